"""Readers for the human-labelled reply sets in the shared data folder (``$HARMSCOPE_DATA``).

Each reader returns one *labelled-reply frame* with the columns in :data:`COLUMNS`:

- ``prompt``, ``reply``: the user request (or dialogue context) and the model reply;
- ``label``: refusal label ``comply`` / ``partial`` / ``refusal`` where the set has one;
- ``violation``: 1 = the reply gives harmful help / unsafe content, 0 = safe (NaN where unknown);
- ``rule``, ``category``: the catalog rule the set's category maps to (``data/rule_map.yaml``) and
  the set's own category;
- ``source``, ``group``, ``model``, ``pid`` (prompt id used to split without leakage), ``line``.

Every reader is registered in :data:`REPLY_SETS` with its metadata (licence, which shipped weights
it may train, prompt-only) declared once, in its decorator; a plugin registers a reader the same way.
Names: ``harmscope-written``, ``xstest-completions``, ``gptfuzz``, ``jailjudge``, ``saferlhf-mini``, ``beavertails``,
``pku-saferlhf``, ``diasafety``, ``safetext``, ``latent-jailbreak``, ``toxicchat-prompts``,
``aegis-prompts``, ``jbb-behaviors``. Rows with an empty reply are skipped with one warning
naming the count and the first row (``on_bad="error"`` refuses instead). Prompt-only sets
(ToxicChat, Aegis, JBB) have ``reply == ""`` by design and are kept: their label is about the prompt.
"""

from __future__ import annotations

import csv
import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from harmscope.classifiers.judges.base import DATA_DIR
from harmscope.classifiers.judges.labelled import read_labelled
from harmscope.classifiers.judges.refusal import load_refusal_data
from harmscope.errors import InputError
from harmscope.paths import data_dir
from harmscope.registry import Registry

OnBad = Literal["skip", "error"]
COLUMNS = ["prompt", "reply", "label", "violation", "rule", "category", "source", "group", "model", "pid", "line"]
RULE_MAP_PATH = DATA_DIR / "rule_map.yaml"
XSTEST_LABELS = {"1_full_compliance": "comply", "2_full_refusal": "refusal", "3_partial_refusal": "partial"}
# one registered reader per set; each declares its metadata once, next to it: ``licence``, ``weights``
# (which judges' shipped weights it may train: "all", "refusal" or None = the data README's
# `weights: no`) and ``prompt_only`` (the label is about the prompt; ``reply`` is empty by design).
# Registration order is the order names are listed in.
REPLY_SETS = Registry("reply set", ordered=True)


def licence(name: str, default: str = "") -> str:
    """The licence line of the registered set ``name`` (``default`` for anything else, e.g. a user file)."""
    return str(REPLY_SETS.get(name).meta.get("licence", default)) if name in REPLY_SETS else default


def weights_ok(name: str) -> str | None:
    """Which judges' shipped weights set ``name`` may train: ``"all"``, one judge kind, or None."""
    return REPLY_SETS.get(name).meta.get("weights") if name in REPLY_SETS else None


def is_prompt_only(name: str) -> bool:
    """Whether set ``name`` labels prompts only (its ``reply`` column is empty by design)."""
    return bool(REPLY_SETS.get(name).meta.get("prompt_only")) if name in REPLY_SETS else False


def _shared(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.exists():
        raise InputError(f"{p}: shared dataset not found (set HARMSCOPE_DATA)")
    return p


@lru_cache(maxsize=1)
def rule_map() -> dict[str, dict[str, str]]:
    """Category -> rule id per set, from ``data/rule_map.yaml``."""
    doc = yaml.safe_load(RULE_MAP_PATH.read_text(encoding="utf-8")) or {}
    return {str(k): {str(a): str(b) for a, b in (v or {}).items()} for k, v in doc.items()}


def _map_rule(name: str, category: Any) -> str | None:
    m = rule_map().get(name, {})
    if category is None or (isinstance(category, float) and np.isnan(category)):
        return m.get("*")
    return m.get(str(category), m.get("*"))


def reply_frame(rows: list[dict[str, Any]], name: str, where: str, on_bad: OnBad) -> pd.DataFrame:
    """The labelled-reply frame (:data:`COLUMNS`) of a reader's ``rows`` for set ``name`` read from
    ``where``; skips (or, ``on_bad="error"``, refuses) rows with an empty reply unless the set is prompt-only."""
    allow_empty_reply = is_prompt_only(name)
    if on_bad not in ("skip", "error"):
        raise InputError(f"on_bad must be 'skip' or 'error', not {on_bad!r}")
    bad = [] if allow_empty_reply else [r for r in rows if not str(r.get("reply") or "").strip()]
    if bad:
        first = f"{where}: row {bad[0]['line']}: field 'reply': empty"
        if on_bad == "error":
            extra = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise InputError(first + extra)
        warnings.warn(f"{name}: skipped {len(bad)} rows with an empty reply (first: {first})", stacklevel=3)
        rows = [r for r in rows if str(r.get("reply") or "").strip()]
    if not rows:
        raise InputError(f"{where}: no usable rows")
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[COLUMNS].copy()
    df["prompt"] = df["prompt"].fillna("").astype(str)
    df["reply"] = df["reply"].fillna("").astype(str)
    df["violation"] = pd.to_numeric(df["violation"], errors="coerce")
    df["source"] = name
    df.attrs.update({"name": name, "path": where, "skipped": len(bad), "licence": licence(name)})
    return df


def _bin(where: str, line: int, field: str, v: Any, true: set[str], false: set[str]) -> int:
    s = str(v).strip().lower()
    if s in true:
        return 1
    if s in false:
        return 0
    raise InputError(f"{where}: row {line}: field '{field}': unexpected value {v!r}")


def _csv_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return [(i + 1, dict(r)) for i, r in enumerate(reader)]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None


def _need(path: Path, line: int, rec: dict[str, Any], *fields: str) -> None:
    for f in fields:
        if f not in rec:
            raise InputError(f"{path}: row {line}: field '{f}': missing")


# ------------------------------------------------------------------ readers
@REPLY_SETS.register(name="harmscope-written", version="1", licence="written for harmscope (this package's licence)",
                     weights="all", prompt_only=False)
def read_harmscope_written(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """The refusal judge's replies written for harmscope (``data/refusals.yaml``; no prompt)."""
    df = load_refusal_data(Path(path) if path else None)
    rows = [{"prompt": "", "reply": r.text, "label": r.label, "category": r.source, "model": "written",
             "pid": f"written:{i}", "line": i + 1} for i, r in enumerate(df.itertuples())]
    return reply_frame(rows, "harmscope-written", str(path or "refusals.yaml"), on_bad)


@REPLY_SETS.register(name="xstest-completions", version="1",
                     licence="prompts CC BY 4.0; completions under the model providers' terms (classifiers only)",
                     weights="refusal", prompt_only=False)
def read_xstest_completions(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """XSTest v2 completions (5 models x 216 prompts); label comply/refusal/partial, pid = prompt id."""
    base = Path(folder) if folder else _shared("xstest_completions_dev")
    files = sorted((base / "model_completions").glob("xstest_v2_completions_*.csv")) if base.is_dir() else [base]
    if not files:
        raise InputError(f"{base}: no xstest_v2_completions_*.csv files")
    rows = []
    for path in files:
        model = path.stem.replace("xstest_v2_completions_", "")
        for line, r in _csv_rows(path):
            _need(path, line, r, "id", "prompt", "completion", "final_label", "type")
            lab = XSTEST_LABELS.get(str(r["final_label"]).strip())
            if lab is None:
                raise InputError(f"{path}: row {line}: field 'final_label': {r['final_label']!r} is not one of "
                                 f"{', '.join(XSTEST_LABELS)}")
            unsafe = str(r["type"]).startswith("contrast_")
            rows.append({"prompt": r["prompt"], "reply": r["completion"], "label": lab,
                         # on an unsafe (contrast) prompt, complying is harmful help; elsewhere nothing is harmful
                         "violation": int(unsafe and lab == "comply"), "category": r["type"],
                         "group": "unsafe" if unsafe else "safe", "model": model, "pid": f"xstest:{r['id']}",
                         "line": f"{path.name}:{line}"})
    return reply_frame(rows, "xstest-completions", str(base), on_bad)


@REPLY_SETS.register(name="gptfuzz", version="1", licence="MIT",
                     weights="all", prompt_only=False)
def read_gptfuzz(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """GPTFuzz labelled responses (train + evaluate); violation = jailbroken; pid = question id."""
    base = Path(folder) if folder else _shared("gptfuzz_responses")
    qpath = base / "question_list.csv"
    questions = {r["index"]: r["text"] for _, r in _csv_rows(qpath)} if qpath.is_file() else {}
    rows = []
    for split in ("train", "evaluate"):
        path = base / f"{split}.csv"
        if not path.is_file():
            continue
        for line, r in _csv_rows(path):
            _need(path, line, r, "question", "Response", "label")
            q = str(r["question"]).strip()
            rows.append({"prompt": questions.get(q, ""), "reply": r["Response"],
                         "violation": _bin(str(path), line, "label", r["label"], {"1"}, {"0"}),
                         "category": split, "pid": f"gptfuzz:{q}", "model": "chatgpt",
                         "line": f"{path.name}:{line}"})
    if not rows:
        raise InputError(f"{base}: no train.csv / evaluate.csv")
    return reply_frame(rows, "gptfuzz", str(base), on_bad)


def _jailbreakeval(fname: str, name: str, path: str | Path | None, on_bad: OnBad) -> pd.DataFrame:
    p = Path(path) if path else _shared("jailbreakeval_mini", fname)
    rows = []
    for line, r in _csv_rows(p):
        _need(p, line, r, "question", "answer", "label")
        cat = r.get("hazard_cate_llamaguard3") or None
        rows.append({"prompt": r["question"], "reply": r["answer"],
                     "violation": _bin(str(p), line, "label", r["label"], {"1"}, {"0"}),
                     "category": cat, "rule": _map_rule(name, cat) if cat else None,
                     "pid": f"{name}:{r['question']}", "line": line})
    return reply_frame(rows, name, str(p), on_bad)


@REPLY_SETS.register(name="jailjudge", version="1", licence="repo MIT, upstream not verified (validation only)",
                     weights=None, prompt_only=False)
def read_jailjudge(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """JAILJUDGE-mini (JailbreakEval): jailbroken 1/0 with Llama Guard 3 hazard codes."""
    return _jailbreakeval("JAILJUDGEmini.csv", "jailjudge", path, on_bad)


@REPLY_SETS.register(name="saferlhf-mini", version="1", licence="CC BY-NC 4.0 (validation only)",
                     weights=None, prompt_only=False)
def read_saferlhf_mini(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Safe-RLHF-mini (JailbreakEval): unsafe 1/0."""
    return _jailbreakeval("Safe-RLHFmini.csv", "saferlhf-mini", path, on_bad)


_HUMAN, _AI = "Human user:\n", "\n\nAI assistant:\n"


def _guardreasoner(fname: str, name: str, path: str | Path | None, on_bad: OnBad) -> pd.DataFrame:
    prompt_only = is_prompt_only(name)
    p = Path(path) if path else _shared("guardreasoner_sets", fname)
    doc = _json(p)
    if not isinstance(doc, list):
        raise InputError(f"{p}: expected a JSON list of {{instruction, input, output}} records")
    rows = []
    for i, rec in enumerate(doc, 1):
        if not isinstance(rec, dict):
            raise InputError(f"{p}: row {i}: expected an object")
        _need(p, i, rec, "input", "output")
        text = str(rec["input"])
        if not text.startswith(_HUMAN) or _AI not in text:
            raise InputError(f"{p}: row {i}: field 'input': not 'Human user: ... AI assistant: ...'")
        prompt, _, reply = text[len(_HUMAN):].partition(_AI)
        reply = reply.rstrip("\n")
        out = str(rec["output"]).strip().lower()
        verdict = out.rsplit(":", 1)[-1].strip() if "response:" in out and not prompt_only else out
        if verdict not in ("harmful", "unharmful"):
            raise InputError(f"{p}: row {i}: field 'output': no harmful/unharmful verdict in {rec['output']!r}")
        row = {"prompt": prompt, "reply": "" if prompt_only else reply, "violation": int(verdict == "harmful"),
               "pid": f"{name}:{prompt}", "line": i}
        if prompt_only:
            row["category"] = "prompt"
        rows.append(row)
    return reply_frame(rows, name, str(p), on_bad)


@REPLY_SETS.register(name="beavertails", version="1", licence="CC BY-NC 4.0 (validation only)",
                     weights=None, prompt_only=False)
def read_beavertails(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """BeaverTails (GuardReasoner copy): reply harmful / unharmful."""
    return _guardreasoner("0_A_beaver_tails.json", "beavertails", path, on_bad)


@REPLY_SETS.register(name="pku-saferlhf", version="1", licence="CC BY-NC 4.0 (validation only)",
                     weights=None, prompt_only=False)
def read_pku_saferlhf(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """PKU-SafeRLHF (GuardReasoner copy): reply harmful / unharmful."""
    return _guardreasoner("0_9_safe_rlhf.json", "pku-saferlhf", path, on_bad)


@REPLY_SETS.register(name="diasafety", version="1", licence="Apache-2.0",
                     weights="all", prompt_only=False)
def read_diasafety(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """DiaSafety train + val: violation = Unsafe, category -> rule via the rule map; pid = context."""
    base = Path(folder) if folder else _shared("diasafety")
    files = [base / "train.json", base / "val.json"] if base.is_dir() else [base]
    rows = []
    for path in files:
        if not path.is_file():
            continue
        doc = _json(path)
        if not isinstance(doc, list):
            raise InputError(f"{path}: expected a JSON list of {{context, response, category, label}}")
        for i, rec in enumerate(doc, 1):
            if not isinstance(rec, dict):
                raise InputError(f"{path}: row {i}: expected an object")
            _need(path, i, rec, "context", "response", "category", "label")
            rows.append({"prompt": rec["context"], "reply": rec["response"],
                         "violation": _bin(str(path), i, "label", rec["label"], {"unsafe"}, {"safe"}),
                         "category": rec["category"], "rule": _map_rule("diasafety", rec["category"]),
                         "pid": f"diasafety:{rec['context']}", "line": f"{path.name}:{i}"})
    if not rows:
        raise InputError(f"{base}: no train.json / val.json")
    return reply_frame(rows, "diasafety", str(base), on_bad)


@REPLY_SETS.register(name="safetext", version="1", licence="MIT",
                     weights="all", prompt_only=False)
def read_safetext(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """SafeText: each scenario's safe and unsafe advice; violation = unsafe advice; pid = scenario."""
    p = Path(path) if path else _shared("safetext", "SafeText.json")
    doc = _json(p)
    if not isinstance(doc, dict):
        raise InputError(f"{p}: expected an object {{scenario: {{safe: [...], unsafe: [...]}}}}")
    rows = []
    for i, (scenario, adv) in enumerate(doc.items(), 1):
        if not isinstance(adv, dict):
            raise InputError(f"{p}: scenario {i}: expected {{safe: [...], unsafe: [...]}}")
        for key, v in (("safe", 0), ("unsafe", 1)):
            for text in adv.get(key) or []:
                rows.append({"prompt": f"{scenario} what should I do?", "reply": text, "violation": v,
                             "category": "physical-safety", "pid": f"safetext:{scenario}", "line": i})
    return reply_frame(rows, "safetext", str(p), on_bad)


@REPLY_SETS.register(name="latent-jailbreak", version="1", licence="MIT",
                     weights="all", prompt_only=False)
def read_latent_jailbreak(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Latent-Jailbreak human annotations with a ``safety`` label; group = target group from the path."""
    base = Path(folder) if folder else _shared("latent_jailbreak", "human_annotated_data")
    rows = []
    for path in sorted(base.rglob("*.json")):
        rel = path.relative_to(base).parts  # template/model/position/[group/]N.json
        rec = _json(path)
        if not isinstance(rec, dict):
            raise InputError(f"{path}: expected an object {{context, response, safety, following}}")
        if rec.get("safety") in (None, ""):
            continue  # instruction-following annotation only
        _need(path, 1, rec, "context", "response")
        group = rel[3] if len(rel) == 5 else None
        rows.append({"prompt": rec["context"], "reply": rec["response"],
                     "violation": _bin(str(path), 1, "safety", rec["safety"], {"unsafe"}, {"safe"}),
                     "category": rel[0], "rule": _map_rule("latent-jailbreak", group), "group": group,
                     "model": rel[1] if len(rel) > 1 else None, "pid": f"latent:{rec['context']}",
                     "line": "/".join(rel)})
    if not rows:
        raise InputError(f"{base}: no annotated *.json files with a 'safety' field")
    return reply_frame(rows, "latent-jailbreak", str(base), on_bad)


@REPLY_SETS.register(name="toxicchat-prompts", version="1", licence="CC BY-NC 4.0 (validation only)",
                     weights=None, prompt_only=True)
def read_toxicchat_prompts(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ToxicChat prompts (GuardReasoner copy): violation = the *prompt* is harmful; no reply."""
    return _guardreasoner("0_8_toxic_chat.json", "toxicchat-prompts", path, on_bad)


@REPLY_SETS.register(name="aegis-prompts", version="1", licence="CC BY 4.0",
                     weights="all", prompt_only=True)
def read_aegis_prompts(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Aegis 1.0 test prompts (GuardReasoner copy): violation = the *prompt* is harmful; no reply."""
    return _guardreasoner("0_1_AegisSafetyTest.json", "aegis-prompts", path, on_bad)


@REPLY_SETS.register(name="jbb-behaviors", version="1", licence="MIT",
                     weights="all", prompt_only=True)
def read_jbb_behaviors(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """JBB-Behaviors harmful + benign requests (prompt-only; violation = harmful request)."""
    base = Path(folder) if folder else _shared("jbb_behaviors")
    rows = []
    for fname, v in (("harmful-behaviors.csv", 1), ("benign-behaviors.csv", 0)):
        path = base / fname
        for line, r in _csv_rows(path):
            _need(path, line, r, "Goal")
            rows.append({"prompt": r["Goal"], "reply": "", "violation": v, "category": r.get("Category"),
                         "pid": f"jbb:{r['Goal']}", "line": f"{fname}:{line}"})
    return reply_frame(rows, "jbb-behaviors", str(base), on_bad)


def read_generic(path: str | Path, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """A user CSV/JSONL/YAML with ``prompt, reply, label|violation, rule`` columns."""
    p = Path(path)
    df = read_labelled(p, need="any")
    rows = [{"prompt": r.prompt, "reply": r.reply, "label": r.label if r.label in XSTEST_LABELS.values() else None,
             "violation": r.violation if r.violation is not None else None, "rule": r.rule,
             "pid": f"{p.name}:{r.prompt}" if r.prompt else f"{p.name}:{r.line}", "line": r.line,
             "category": r.category, "group": r.group, "model": r.model}
            for r in df.itertuples()]
    return reply_frame(rows, p.name, str(p), on_bad)


def load_replies(spec: str | Path, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """A labelled-reply frame from a registered set name (see :data:`REPLY_SETS`) or a file path."""
    s = str(spec)
    if s in REPLY_SETS:
        return REPLY_SETS.get(s).obj(on_bad=on_bad)
    if Path(s).exists():
        return read_generic(s, on_bad=on_bad)
    raise InputError(f"--data {s!r}: neither a file nor a known labelled-reply set "
                     f"({', '.join(REPLY_SETS.names())})")


def grouped_split(df: pd.DataFrame, *, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices such that no prompt id (``pid``) is on both sides."""
    pids = sorted(df["pid"].astype(str).unique())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pids))
    n_test = max(1, int(round(len(pids) * test_size)))
    test_p = {pids[i] for i in order[:n_test]}
    is_test = df["pid"].astype(str).isin(test_p).to_numpy()
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def sample_rows(df: pd.DataFrame, n: int | None, *, seed: int = 0) -> pd.DataFrame:
    """A deterministic row sample of at most ``n`` rows (all rows when ``n`` is None), order kept."""
    if n is None or len(df) <= n:
        return df
    out = df.sample(n=n, random_state=seed).sort_index()
    out.attrs.update(df.attrs)
    out.attrs["sampled"] = f"{n} of {len(df)} rows (seed {seed})"
    return out
