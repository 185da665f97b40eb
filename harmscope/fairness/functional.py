"""HateCheck-style functional test suites: accuracy per functionality and per target group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import InputError
from harmscope.stats import wilson

_GOLD_WORDS = {
    "hateful": 1,
    "hate": 1,
    "toxic": 1,
    "offensive": 1,
    "1": 1,
    "true": 1,
    "yes": 1,
    "bad": 1,
    "non-hateful": 0,
    "not hateful": 0,
    "nonhateful": 0,
    "non_hateful": 0,
    "nontoxic": 0,
    "non-toxic": 0,
    "0": 0,
    "false": 0,
    "no": 0,
    "not_bad": 0,
    "neutral": 0,
}


def read_suite(
    path: str | Path,
    *,
    text_col: str = "test_case",
    label_col: str = "label_gold",
    functionality_col: str = "functionality",
    target_col: str | None = "target_ident",
) -> pd.DataFrame:
    """Read a suite CSV/Parquet into columns text, gold (0/1), functionality, target."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: functional suite file not found")
    df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    need = [text_col, label_col, functionality_col] + ([target_col] if target_col else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{p}: column {missing[0]!r} not found (columns: {', '.join(map(str, df.columns))})")
    gold = []
    for i, v in enumerate(df[label_col].tolist()):
        key = str(v).strip().lower()
        if key.endswith(".0"):
            key = key[:-2]
        if key not in _GOLD_WORDS:
            raise InputError(
                f"{p}: row {i + 1}, column {label_col!r}: gold label {v!r} is not hateful/non-hateful/0/1"
            )
        gold.append(_GOLD_WORDS[key])
    for i, t in enumerate(df[text_col].tolist()):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"{p}: row {i + 1}, column {text_col!r}: empty text")
    out = pd.DataFrame(
        {"text": df[text_col].astype(str), "gold": gold, "functionality": df[functionality_col].astype(str)}
    )
    out["target"] = df[target_col].fillna("none").astype(str) if target_col else "none"
    out.attrs["source"] = str(p)
    return out


def functional_report(
    suite: pd.DataFrame, scores: np.ndarray, *, threshold: float = 0.5
) -> list[dict[str, Any]]:
    """Accuracy rows (with Wilson CIs) per functionality and per target group, plus an overall row."""
    s = np.asarray(scores, dtype=float)
    if s.size != len(suite):
        raise InputError(f"functional suite: got {s.size} scores for {len(suite)} test cases")
    df = suite.assign(pred=(s >= threshold).astype(int), score=s)
    df["correct"] = (df["pred"] == df["gold"]).astype(int)
    rows: list[dict[str, Any]] = []

    def add(kind: str, name: str, part: pd.DataFrame) -> None:
        k, n = int(part["correct"].sum()), len(part)
        _, lo, hi = wilson(k, n)
        rows.append(
            {
                "by": kind,
                "name": name,
                "n": n,
                "correct": k,
                "accuracy": k / n,
                "lo": lo,
                "hi": hi,
                "gold_hateful_share": float(part["gold"].mean()),
                "mean_score": float(part["score"].mean()),
            }
        )

    add("overall", "all", df)
    for name, part in df.groupby("functionality", sort=True):
        add("functionality", str(name), part)
    for name, part in df.groupby("target", sort=True):
        add("target", str(name), part)
    return rows
