"""Reader for human-labelled judge data (``judges validate`` / ``judges train``).

Formats: JSONL (one object per line), CSV, or YAML (a list of objects). Fields:
``reply`` (or ``text``) the model reply; ``violation`` (0/1/true/false) and/or ``label`` (for the
refusal judge: comply/partial/refusal; for awareness: aware/unaware); optional ``rule`` (rule id),
``rule_text``, ``prompt`` (user message), ``expected`` (comply/refuse/comply-without-violating),
``reasoning``. Errors name the file, the row (line) and the field.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harmscope.errors import InputError
from harmscope.safeio import jsonl_records

_TRUE = {"1", "true", "yes", "y", "violation", "violating", "unsafe", "harmful"}
_FALSE = {"0", "false", "no", "n", "ok", "compliant", "safe", "harmless"}
EXPECTED = {"comply", "refuse", "comply-without-violating"}


def _bool(path: Path, line: int, field: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise InputError(f"{path}: row {line}: field '{field}': expected 0/1/true/false, got {v!r}")


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        if suffix in (".jsonl", ".ndjson"):
            out.extend(jsonl_records(path, path.read_text(encoding="utf-8")))
        elif suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                for row in reader:
                    out.append((reader.line_num, dict(row)))
        elif suffix in (".yaml", ".yml", ".json"):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "items" in doc:
                doc = doc["items"]
            if not isinstance(doc, list):
                raise InputError(f"{path}: expected a list of labelled items")
            out = [(i + 1, d) for i, d in enumerate(doc)]
        else:
            raise InputError(f"{path}: unsupported format {suffix!r} (use .jsonl, .csv or .yaml)")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return out


GROUP_FIELDS = ("category", "source", "group", "model")
"""Optional fields of a labelled item that ``judges validate --by`` can group on."""


def text_or_none(v: Any) -> str | None:
    """``v`` as stripped text, or None when it is missing (None, NaN, ``pd.NA``) or blank."""
    if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return None
    s = str(v).strip()
    return s or None


def read_labelled(path: str | Path, *, need: str = "violation", need_rule: bool = False) -> pd.DataFrame:
    """Read labelled items; ``need`` is ``violation`` or ``label`` (the required field).

    Returns a DataFrame with ``reply, violation, label, rule, rule_text, prompt, expected,
    reasoning, line`` and the optional grouping fields :data:`GROUP_FIELDS` (None where absent).
    """
    path = Path(path)
    rows = []
    for line, rec in _records(path):
        if not isinstance(rec, dict):
            raise InputError(f"{path}: row {line}: expected an object with fields")
        reply = rec.get("reply", rec.get("text"))
        if reply is None or (isinstance(reply, float) and pd.isna(reply)):
            raise InputError(f"{path}: row {line}: field 'reply': missing (also accepted: 'text')")
        label = rec.get("label")
        label = None if label in (None, "") else str(label).strip().lower()
        viol = rec.get("violation")
        viol = None if viol in (None, "") else _bool(path, line, "violation", viol)
        if need == "violation" and viol is None:
            raise InputError(f"{path}: row {line}: field 'violation': missing")
        if need == "label" and label is None:
            raise InputError(f"{path}: row {line}: field 'label': missing")
        rule = rec.get("rule") or rec.get("rule_id") or None
        if need_rule and not rule and not rec.get("rule_text"):
            raise InputError(f"{path}: row {line}: field 'rule': missing (give a rule id or 'rule_text')")
        expected = rec.get("expected") or "refuse"
        if expected not in EXPECTED:
            raise InputError(f"{path}: row {line}: field 'expected': {expected!r} is not one of "
                             f"{', '.join(sorted(EXPECTED))}")
        rows.append({"reply": str(reply), "violation": viol, "label": label, "rule": rule,
                     "rule_text": rec.get("rule_text") or None, "prompt": str(rec.get("prompt") or ""),
                     "expected": expected, "reasoning": rec.get("reasoning") or None, "line": line,
                     **{k: text_or_none(rec.get(k)) for k in GROUP_FIELDS}})
    if not rows:
        raise InputError(f"{path}: no labelled items")
    return pd.DataFrame(rows)
