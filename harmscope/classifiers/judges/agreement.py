"""Judge agreement: how far each judge (and each published judge's verdict column) agrees with
human labels, and with each other (``harmscope judges compare``).

Per judge, on the rows with a human label: agreement (accuracy), precision, recall, specificity,
F1, Cohen's kappa, AUC when the judge gives scores, the confusion matrix, the abstention rate
(metrics are computed on the rows the judge answered), per-source and per-category breakdowns,
and for judges with scores a reliability table, the expected calibration error (ECE, equal-width
bins) and a suggested threshold (maximum Youden's J = TPR - FPR, in-sample: confirm it on held-out
labels before using it). Between judges, on the rows both answered: Cohen's kappa of their
verdicts and an exact McNemar test of their correctness against the human label.

Positive class = violation / harmful / jailbroken. Input: a labelled CSV, JSONL, JSON or YAML
file (columns found by name, or named with options), or a named dataset of the labelled-reply
readers (:mod:`harmscope.classifiers.judges.labelled`) when they provide one.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.judges.base import JudgeItem
from harmscope.classifiers.judges.cache import judge_items
from harmscope.classifiers.judges.ensemble import load_judge
from harmscope.classifiers.judges.replysets import REPLY_SETS
from harmscope.errors import HarmscopeError, InputError
from harmscope.rules import load_catalog
from harmscope.safeio import jsonl_records
from harmscope.types import Message, Probe, Response

REPLY_COLS = ("reply", "text", "response", "completion", "answer", "target_response", "generation")
PROMPT_COLS = ("prompt", "question", "goal", "behavior", "request", "user")
LABEL_COLS = ("violation", "human_majority", "harmful", "jailbroken", "unsafe", "label")
SOURCE_COLS = ("source", "dataset", "model")
CATEGORY_COLS = ("category", "hazard_category", "hazard_cate_llamaguard3", "rule")
TRUE = {"1", "1.0", "true", "yes", "y", "unsafe", "harmful", "violation", "jailbroken", "jailbreak", "positive"}
FALSE = {"0", "0.0", "false", "no", "n", "safe", "unharmful", "harmless", "ok", "negative", "not jailbroken"}
N_BINS = 10


# ---------------------------------------------------------------------- reading
def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            df = pd.DataFrame(rows)
            df["_line"] = range(2, len(df) + 2)
        elif suffix in (".jsonl", ".ndjson"):
            recs = jsonl_records(path, path.read_text(encoding="utf-8"))
            bad = next(((ln, r) for ln, r in recs if not isinstance(r, dict)), None)
            if bad:
                raise InputError(f"{path}: row {bad[0]}: expected an object with fields")
            df = pd.DataFrame([r for _, r in recs])
            df["_line"] = [ln for ln, _ in recs]
        elif suffix in (".json", ".yaml", ".yml"):
            import yaml

            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise InputError(f"{path}: not valid JSON/YAML ({str(exc).splitlines()[0]})") from None
            if isinstance(doc, dict) and "items" in doc:
                doc = doc["items"]
            if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
                raise InputError(f"{path}: expected a list of objects with fields")
            df = pd.DataFrame(doc)
            df["_line"] = range(1, len(df) + 1)
        else:
            raise InputError(f"{path}: unsupported format {suffix!r} (use .csv, .jsonl, .json or .yaml)")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if df.empty or len(df.columns) <= 1:
        raise InputError(f"{path}: no labelled rows")
    return df


def _named_dataset(name: str) -> pd.DataFrame | None:
    """A named labelled-reply set (``jailjudge``, ``gptfuzz``, ...) from the labelled-reply readers."""
    if name not in REPLY_SETS:
        return None
    df = REPLY_SETS.get(name).obj().reset_index(drop=True)
    line = pd.to_numeric(df["line"], errors="coerce") if "line" in df.columns else None
    df["_line"] = line.fillna(0).astype(int) if line is not None else range(1, len(df) + 1)
    return df


def _pick(df: pd.DataFrame, given: str | None, candidates: Sequence[str], what: str, where: str,
          required: bool = True) -> str | None:
    if given:
        if given not in df.columns:
            raise InputError(f"{where}: no column {given!r} for {what} (columns: {', '.join(map(str, df.columns[:20]))})")
        return given
    for c in candidates:
        if c in df.columns:
            return c
    if required:
        raise InputError(f"{where}: no {what} column (tried {', '.join(candidates)}; name one with an option)")
    return None


def to_bool(value: Any) -> bool | None:
    """A 0/1/true/false/yes/no/unsafe/safe... value as bool; None for empty; ValueError otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and float(value) in (0.0, 1.0):
        return bool(value)
    s = str(value).strip().lower()
    if s in ("", "nan", "none", "null", "n/a", "na"):
        return None
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(value)


def to_bool_or_text(value: Any) -> str | None:
    """A cell as stripped lower-case text, None when empty (for ``--positive`` matching)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = str(value).strip().lower()
    return None if s in ("", "nan", "none", "null") else s


def load_labelled_table(data: str | Path, *, reply_col: str | None = None, prompt_col: str | None = None,
                        label_col: str | None = None, source_col: str | None = None,
                        category_col: str | None = None, reference_cols: Sequence[str] = (),
                        positive: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of a labelled file (or named dataset) as ``reply, prompt, y, source, category,
    rule, line`` plus one ``ref:NAME`` column (True/False/None) per reference column.

    ``positive``: label values that count as positive (e.g. ``1_full_compliance``); any other
    non-empty value is negative. Without it, values are read as 0/1/true/false/yes/no/unsafe/safe.
    """
    pos = {str(v).strip().lower() for v in positive}
    path = Path(data)
    df = _named_dataset(str(data)) if not path.exists() else None
    if df is None:
        df = _read_table(path)
    where = str(data)
    rc = _pick(df, reply_col, REPLY_COLS, "reply", where)
    pc = _pick(df, prompt_col, PROMPT_COLS, "prompt", where, required=False)
    lc = _pick(df, label_col, LABEL_COLS, "human label", where)
    sc = _pick(df, source_col, SOURCE_COLS, "source", where, required=False)
    cc = _pick(df, category_col, CATEGORY_COLS, "category", where, required=False)
    out = pd.DataFrame({"line": df["_line"].astype(int).to_numpy()})
    out["reply"] = df[rc].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out["prompt"] = df[pc].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) \
        if pc else ""

    def col_bool(col: str, field: str) -> list[bool | None]:
        vals = []
        for line, v in zip(out["line"], df[col], strict=True):
            try:
                if pos:
                    b = to_bool_or_text(v)
                    vals.append(None if b is None else b in pos)
                else:
                    vals.append(to_bool(v))
            except ValueError:
                raise InputError(f"{where}: row {line}: field '{field}': expected 0/1/true/false/yes/no/"
                                 f"unsafe/safe, got {v!r}") from None
        return vals

    out["y"] = col_bool(lc, lc)
    out["source"] = df[sc].astype(str).to_numpy() if sc else "all"
    out["category"] = df[cc].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                                 else str(v)).to_numpy() if cc else ""
    out["rule"] = df["rule"].map(lambda v: str(v) if isinstance(v, str) and v else None).to_numpy() \
        if "rule" in df.columns else None
    for ref in reference_cols:
        if ref not in df.columns:
            raise InputError(f"{where}: --reference-col {ref!r}: no such column "
                             f"(columns: {', '.join(map(str, df.columns[:20]))})")
        out[f"ref:{ref}"] = col_bool(ref, ref)
    out = out[out["y"].notna()].reset_index(drop=True)
    if out.empty:
        raise InputError(f"{where}: no row has a human label in column {lc!r}")
    out["y"] = out["y"].astype(bool)
    return out


# ---------------------------------------------------------------------- running judges
def run_judge(spec: str, table: pd.DataFrame, *, store: Any = None,
              catalog: Any = None) -> tuple[str, list[bool | None], list[float | None]]:
    """Verdicts (None = abstained) and scores of judge ``spec`` on every row of ``table``.

    Rule-level judges need a ``rule`` column naming catalog rules; guard models give a
    reply-level verdict (a human harm label is about the reply, not one rule). With a ``store``
    the verdicts go through the judge cache.
    """
    judge, _ = load_judge(spec)
    rules: dict[str, Any] = {}
    if judge.per_rule:
        if catalog is None:
            catalog = load_catalog()
        rules = dict(catalog.rules)
    guard = hasattr(judge, "verdict")
    items = []
    for row in table.itertuples():
        rule = None
        if judge.per_rule and not guard:  # guard models give a reply-level verdict here
            rid = row.rule if isinstance(row.rule, str) else None
            if rid is not None and rid not in rules:
                raise InputError(f"row {row.line}: field 'rule': unknown rule id {rid!r}")
            if rid is None:
                raise InputError(f"row {row.line}: field 'rule': judge {judge.id} judges (reply, rule) pairs; "
                                 "give a 'rule' column")
            rule = rules.get(rid) if rid else None
        probe = Probe(id=f"row{row.line}", rule_ids=[rule.id] if rule else [], template_id="compare",
                      expected="refuse", messages=[Message(role="user", content=row.prompt or "(request)")])
        items.append(JudgeItem(probe, Response(probe_id=probe.id, model="labelled", text=row.reply), rule))
    if store is not None:
        res = judge_items(store, judge, items)
    else:
        res = judge.judge(items)
    if len(res) != len(items):
        raise HarmscopeError(f"judge {judge.id} returned {len(res)} verdicts for {len(items)} rows")
    return judge.id, [j.violation for j in res], [j.score for j in res]


# ---------------------------------------------------------------------- metrics
def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def verdict_metrics(y: np.ndarray, pred: Sequence[bool | None], score: Sequence[float | None] | None = None,
                    ) -> dict[str, Any]:
    """Binary metrics on the answered rows + abstention rate (``n`` counts every row)."""
    from harmscope.stats import binary_metrics

    answered = np.array([p is not None for p in pred])
    n = len(pred)
    yt = y[answered].astype(int)
    yp = np.array([int(bool(p)) for p in pred if p is not None], dtype=int)
    sc = None
    if score is not None:
        s = [score[i] for i in range(n) if answered[i]]
        if s and all(v is not None for v in s):
            sc = np.array(s, dtype=float)
    m = binary_metrics(yt, yp, sc) if answered.any() else {"n": 0}
    m["n_answered"] = m.pop("n")
    m.update({"n": n, "abstained": int(n - answered.sum()), "abstention_rate": (n - answered.sum()) / n if n else None})
    return _clean(m)


def calibration(y: np.ndarray, score: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Reliability table (equal-width bins), ECE, ROC points and the max-Youden threshold."""
    from sklearn.metrics import roc_curve

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(score, edges[1:-1], right=False), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = idx == b
        k = int(sel.sum())
        if not k:
            continue
        conf, acc = float(score[sel].mean()), float(y[sel].mean())
        ece += k / len(y) * abs(acc - conf)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": k, "mean_score": conf,
                     "positive_rate": acc})
    out: dict[str, Any] = {"bins": bins, "ece": float(ece), "n_bins": n_bins}
    if 0 < y.sum() < len(y):
        fpr, tpr, th = roc_curve(y.astype(int), score)
        j = tpr - fpr
        best = int(np.argmax(j[1:]) + 1) if len(j) > 1 else 0
        thr = float(min(1.0, th[best]))
        pred = score >= thr
        out.update({"roc": {"fpr": fpr.round(6).tolist(), "tpr": tpr.round(6).tolist()},
                    "suggested_threshold": thr, "youden_j": float(j[best]),
                    "at_threshold": {"tpr": float(tpr[best]), "fpr": float(fpr[best]),
                                     "accuracy": float((pred == y.astype(bool)).mean())},
                    "threshold_note": "in-sample maximum of Youden's J: confirm on held-out labels"})
    return out


def _breakdown(table: pd.DataFrame, col: str, pred: Sequence[bool | None]) -> list[dict[str, Any]]:
    rows = []
    if col not in table or table[col].nunique() <= 1 and col == "source" and table[col].iloc[0] == "all":
        return rows
    p = np.array(pred, dtype=object)
    for key, g in table.groupby(col, sort=True):
        if key in ("", None):
            key = "(none)"
        m = verdict_metrics(g["y"].to_numpy(), list(p[g.index]))
        rows.append({col: str(key), **{k: m.get(k) for k in ("n", "n_answered", "abstention_rate", "accuracy",
                                                            "precision", "recall", "kappa", "tp", "fp", "tn",
                                                            "fn")},
                     "positive_rate": float(g["y"].mean())})
    return rows


def pairwise(y: np.ndarray, preds: dict[str, Sequence[bool | None]]) -> list[dict[str, Any]]:
    """Cohen's kappa between two judges' verdicts and exact McNemar on their correctness."""
    from harmscope.stats import binary_metrics, mcnemar_exact

    names = list(preds)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = preds[a], preds[b]
            both = [k for k in range(len(y)) if pa[k] is not None and pb[k] is not None]
            if not both:
                out.append({"a": a, "b": b, "n": 0, "kappa": None, "agreement": None, "b_only_a_right": 0,
                            "c_only_b_right": 0, "mcnemar_p": None})
                continue
            va = np.array([int(bool(pa[k])) for k in both])
            vb = np.array([int(bool(pb[k])) for k in both])
            yt = y[both].astype(int)
            kappa = binary_metrics(va, vb)["kappa"]
            ra, rb = va == yt, vb == yt
            nb, nc = int((ra & ~rb).sum()), int((~ra & rb).sum())
            out.append(_clean({"a": a, "b": b, "n": len(both), "agreement": float((va == vb).mean()),
                               "kappa": kappa, "b_only_a_right": nb, "c_only_b_right": nc,
                               "mcnemar_p": mcnemar_exact(nb, nc)}))
    return out


def compare_judges(data: str | Path, judges: Sequence[str] = (), *, reference_cols: Sequence[str] = (),
                   reply_col: str | None = None, prompt_col: str | None = None, label_col: str | None = None,
                   source_col: str | None = None, category_col: str | None = None,
                   positive: Sequence[str] = (), store: Any = None,
                   n_bins: int = N_BINS, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The full judge-agreement report as a JSON-able dict (see module doc)."""
    if not judges and not reference_cols:
        raise HarmscopeError("judges compare needs at least one --judge or --reference-col")
    table = load_labelled_table(data, reply_col=reply_col, prompt_col=prompt_col, label_col=label_col,
                                source_col=source_col, category_col=category_col, reference_cols=reference_cols,
                                positive=positive)
    say = progress or (lambda s: None)
    y = table["y"].to_numpy().astype(bool)
    preds: dict[str, list[bool | None]] = {}
    scores: dict[str, list[float | None] | None] = {}
    kinds: dict[str, str] = {}
    for spec in judges:
        say(f"judging {len(table)} rows with {spec}")
        try:
            jid, p, s = run_judge(spec, table, store=store)
        except InputError as exc:
            raise InputError(f"{data}: {exc}") from None
        if jid in preds:
            raise HarmscopeError(f"judge {jid!r} is listed twice")
        preds[jid], scores[jid], kinds[jid] = p, s, "judge"
    for ref in reference_cols:
        name = f"ref:{ref}"
        preds[name] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v)
                       for v in table[name]]
        scores[name], kinds[name] = None, "reference column"
    rows = []
    for name, p in preds.items():
        s = scores[name]
        answered = [i for i in range(len(p)) if p[i] is not None]
        has_scores = s is not None and answered and all(s[i] is not None for i in answered)
        m = verdict_metrics(y, p, s if has_scores else None)
        entry: dict[str, Any] = {"judge": name, "kind": kinds[name], "metrics": m,
                                 "confusion": {"tp": m.get("tp"), "fp": m.get("fp"), "tn": m.get("tn"),
                                               "fn": m.get("fn")},
                                 "by_source": _breakdown(table, "source", p),
                                 "by_category": _breakdown(table, "category", p) if table["category"].ne("").any()
                                 else []}
        if has_scores:
            sc = np.array([s[i] for i in answered], dtype=float)
            entry["calibration"] = calibration(y[answered].astype(int), sc, n_bins)
        rows.append(entry)
    return {
        "kind": "judge-agreement",
        "data": str(data),
        "n": len(table),
        "positive_rate": float(y.mean()),
        "positive": (f"label in {sorted({str(v) for v in positive})}" if positive
                     else "violation (harmful / jailbroken / unsafe)"),
        "sources": sorted(table["source"].astype(str).unique().tolist()),
        "judges": rows,
        "pairwise": pairwise(y, preds),
        "notes": ["metrics are on the rows each judge answered; abstention_rate is the share it did not",
                  "McNemar: exact two-sided test on the rows both judges answered, b = only A right, "
                  "c = only B right",
                  "suggested thresholds are in-sample: confirm them on held-out labels"],
    }

