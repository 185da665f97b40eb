"""``judges validate``: a judge's agreement with human labels, saved with the judge.

``data`` is a labelled file (JSONL/CSV/YAML with ``prompt, reply, label|violation, rule``) or
the name of a labelled-reply set (``xstest-completions``, ``gptfuzz``, ``jailjudge``, ...; see
:mod:`harmscope.classifiers.judges.replysets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.judges.base import JudgeItem, save_validation, user_judges_dir
from harmscope.classifiers.judges.ensemble import load_judge
from harmscope.classifiers.judges.labelled import read_labelled, text_or_none
from harmscope.classifiers.judges.replysets import REPLY_SETS, load_replies, sample_rows
from harmscope.classifiers.judges.rule_model import USER_TEXT
from harmscope.errors import InputError
from harmscope.rules import load_catalog
from harmscope.types import Message, Probe, Response, Rule

REFUSAL_LABELS = ("comply", "partial", "refusal")


def _frame(data: str | Path, judge: Any, on_bad: str) -> tuple[pd.DataFrame, str]:
    """Labelled rows for ``judge``: reader frames, or the legacy labelled-file reader."""
    s = str(data)
    if s in REPLY_SETS:
        df = load_replies(s, on_bad=on_bad)  # type: ignore[arg-type]
        df = df.assign(rule_text=None, reasoning=None, expected="refuse")
        return df, s
    path = Path(s)
    if not path.exists():
        raise InputError(f"--data {s!r}: neither a file nor a known labelled-reply set ({', '.join(REPLY_SETS.names())})")
    df = read_labelled(path, need="any" if judge.kind in ("refusal", "awareness", "harm") else "violation",
                       need_rule=judge.per_rule)
    empty = df["reply"].str.strip() == ""
    if empty.any():
        first = f"{path}: row {int(df.loc[empty, 'line'].iloc[0])}: field 'reply': empty"
        if on_bad == "error":
            raise InputError(first + (f" (and {int(empty.sum()) - 1} more)" if empty.sum() > 1 else ""))
        import warnings

        warnings.warn(f"{path.name}: skipped {int(empty.sum())} rows with an empty reply (first: {first})",
                      stacklevel=2)
        df = df[~empty].reset_index(drop=True)
    return df, path.name


BY_FIELDS = ("category", "rule", "source", "model", "group", "label")
"""Fields ``validate_judge(by=...)`` can break the figures down by."""


def one_line(value: Any, width: int = 40) -> str:
    """A data value fit for one terminal line: control, format (bidi) and other non-printable
    characters shown as ``[U+XXXX]``, cut to ``width`` characters."""
    pieces = [c if c.isprintable() else f"[U+{ord(c):04X}]" for c in str(value)]
    if sum(map(len, pieces)) <= width:
        return "".join(pieces)
    out, n = [], 0
    for piece in pieces:  # cut before a piece that would not fit, never inside a [U+XXXX] mark
        if n + len(piece) > width - 1:
            break
        out.append(piece)
        n += len(piece)
    return "".join(out) + "…"


def _by_groups(values: list[Any], truth: list[int], pred: list[int], score: list[float]
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Binary metrics per value of a grouping field, largest group first (then by value), and
    those of the rows without a value (None, NaN or blank; ``None`` when every row has one)."""
    from harmscope.stats import binary_metrics

    keys = pd.Series([text_or_none(v) for v in values], dtype=object)
    t, p, s = np.array(truth), np.array(pred), np.array(score, dtype=float)
    missing = keys.isna().to_numpy()
    rows = pd.Series(np.arange(len(keys)))[~missing].groupby(keys[~missing].to_numpy()).agg(list)
    order = sorted(rows.index, key=lambda k: (-len(rows[k]), k))
    groups = {str(k): binary_metrics(t[rows[k]], p[rows[k]], s[rows[k]]) for k in order}
    return groups, (binary_metrics(t[missing], p[missing], s[missing]) if missing.any() else None)


def validate_judge(judge_spec: str, data: str | Path, *, save: bool = True, catalog: Any = None,
                   sample: int | None = None, seed: int = 0, on_bad: str = "skip",
                   by: str | None = None) -> dict[str, Any]:
    """Judge every labelled item and compare with the labels.

    ``refusal`` is compared on ``label`` when given (positive = complied; refusal and partial
    refusal are refusals), else on ``violation``; ``harm`` on ``violation`` (positive = harmful);
    rule-level judges need ``rule``/``rule_text``. ``sample`` scores a deterministic row sample.
    ``by`` (one of :data:`BY_FIELDS`) adds the same figures per value of that field (``out["by"]``).
    """
    from harmscope.stats import binary_metrics

    if by is not None and by not in BY_FIELDS:
        raise InputError(f"--by {by!r}: not one of {', '.join(BY_FIELDS)}")
    judge, _ = load_judge(judge_spec)
    df, where = _frame(data, judge, on_bad)
    df = sample_rows(df, sample, seed=seed)
    if by is not None and (by not in df.columns or df[by].isna().all()):
        raise InputError(f"--by {by}: {where} has no '{by}' values")
    rules: dict[str, Any] = {}
    if judge.per_rule:
        if catalog is None:
            catalog = load_catalog()
        rules = dict(catalog.rules)
    items, truth, groups = [], [], []
    for row in df.itertuples():
        label = row.label if isinstance(row.label, str) else None
        viol = None if row.violation is None or (isinstance(row.violation, float) and np.isnan(row.violation)) \
            else int(row.violation)
        if judge.kind == "refusal" and label is not None:
            if label not in REFUSAL_LABELS:
                raise InputError(f"{where}: row {row.line}: field 'label': {label!r} is not comply/partial/refusal")
            y = int(label == "comply")
        elif judge.kind == "awareness" and label is not None and viol is None:
            y = int(label == "aware")
        elif viol is None:
            continue  # this row carries no label this judge can be compared on
        else:
            y = viol
        rule = None
        if judge.per_rule:
            rule_text = getattr(row, "rule_text", None)
            if rule_text:
                base = rules.get(row.rule) if row.rule else next(iter(rules.values()))
                rule = Rule(**{**base.model_dump(), "id": row.rule or "user-rule", "text": rule_text,
                               "source": USER_TEXT})
            elif row.rule in rules:
                rule = rules[row.rule]
            elif isinstance(row.rule, str):
                raise InputError(f"{where}: row {row.line}: field 'rule': unknown rule id {row.rule!r}")
            else:
                continue  # no rule for this row (e.g. a category the rule map does not cover)
        probe = Probe(id=f"v{row.Index}", rule_ids=[rule.id] if rule else [], template_id="validate",
                      expected="refuse", messages=[Message(role="user", content=row.prompt or "(request)")])
        items.append(JudgeItem(probe, Response(probe_id=probe.id, model="labelled", text=row.reply,
                                               reasoning=getattr(row, "reasoning", None)), rule))
        truth.append(y)
        if by is not None:
            groups.append(getattr(row, by))
    if not items:
        need = "'label' or 'violation'" if judge.kind == "refusal" else ("'violation' and a mapped 'rule'"
                                                                         if judge.per_rule else "'violation'")
        raise InputError(f"{where}: no rows carry {need} for the {judge.name} judge")
    res = judge.judge(items)
    pred, score = [], []
    for j in res:
        if judge.kind == "refusal":
            pred.append(int(j.label == "comply"))
            probs = j.meta.get("probs") or {}
            score.append(float(probs.get("comply", j.score if j.score is not None else pred[-1])))
        else:
            pred.append(int(bool(j.violation)))
            score.append(j.score if j.score is not None else float(pred[-1]))
    m = binary_metrics(np.array(truth), np.array(pred), np.array(score))
    m["abstained"] = sum(1 for j in res if j.violation is None and judge.kind != "refusal")
    positive = "complied (refusal and partial refusal count as refused)" if judge.kind == "refusal" else "violation"
    out = {"source": f"judges validate on {where} ({len(truth)} human-labelled items"
                     + (f", sample of {sample}, seed {seed}" if sample else "") + ")",
           "metrics": {**m, "positive": positive}, "judge": judge.id, "version": judge.full_version}
    if by is not None:
        by_groups, by_missing = _by_groups(groups, truth, pred, score)
        out["by"] = {"field": by, "groups": by_groups, "missing": by_missing}
    if save:
        dest = user_judges_dir(judge.id) / "validation.json"
        save_validation(dest, out)
        out["saved_to"] = str(dest)
    return out
