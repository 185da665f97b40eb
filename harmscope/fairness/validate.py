"""Input checks for the fairness metrics: one clear line per problem, naming source, row and field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import InputError


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def as_labels(y_true: Any, *, source: str = "labels", field: str = "label") -> np.ndarray:
    """Labels as floats in [0, 1]; raise ``InputError`` naming the first bad row (1-based)."""
    try:
        y = np.asarray(pd.to_numeric(pd.Series(np.asarray(y_true).ravel()), errors="coerce"), dtype=float)
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
        raise InputError(f"{source}: field {field!r}: labels are not numeric ({exc})") from None
    raw = np.asarray(y_true).ravel()
    if y.size == 0:
        raise InputError(f"{source}: field {field!r}: no rows")
    bad = ~np.isfinite(y)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(
            f"{source}: row {i + 1}, field {field!r}: label {raw[i]!r} is missing or not a number"
        )
    bad = (y < 0) | (y > 1)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{source}: row {i + 1}, field {field!r}: label {y[i]:g} is outside [0, 1]")
    return y


def as_scores(y_score: Any, n: int, *, source: str = "scores", field: str = "score") -> np.ndarray:
    """Scores as finite floats, exactly ``n`` of them."""
    s = np.asarray(y_score, dtype=float).ravel() if not isinstance(y_score, pd.DataFrame) else None
    if s is None:
        raise InputError(f"{source}: field {field!r}: expected one score per row, got a table")
    if s.size != n:
        raise InputError(f"{source}: field {field!r}: got {s.size} scores for {n} rows")
    bad = ~np.isfinite(s)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{source}: row {i + 1}, field {field!r}: score {s[i]!r} is not a finite number")
    return s


def as_membership(
    groups: pd.DataFrame, n: int, *, threshold: float = 0.5, source: str = "groups"
) -> tuple[list[str], np.ndarray]:
    """Boolean membership matrix ``(n, G)``: identity value > ``threshold``; NaN means not a member.

    Identity columns must be numeric (or boolean) in [0, 1] and not entirely missing.
    """
    if not isinstance(groups, pd.DataFrame):
        raise InputError(f"{source}: identity groups must be a DataFrame with one column per group")
    if groups.shape[1] == 0:
        raise InputError(f"{source}: no identity columns given")
    if len(groups) != n:
        raise InputError(f"{source}: identity table has {len(groups)} rows, labels have {n}")
    names = [str(c) for c in groups.columns]
    if len(set(names)) != len(names):
        raise InputError(f"{source}: identity column names repeat: {names}")
    out = np.zeros((n, len(names)), dtype=bool)
    for j, col in enumerate(groups.columns):
        raw = groups[col]
        if raw.dtype == bool:
            out[:, j] = raw.to_numpy()
            continue
        v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        nonnum = np.isnan(v) & raw.notna().to_numpy()
        if nonnum.any():
            i = _first_bad(nonnum)
            raise InputError(
                f"{source}: row {i + 1}, column {col!r}: {raw.iloc[i]!r} is not a number in [0, 1]"
            )
        if np.isnan(v).all():
            raise InputError(f"{source}: identity column {col!r} is empty (all values missing)")
        bad = (v < 0) | (v > 1)
        if bad.any():
            i = _first_bad(bad)
            raise InputError(
                f"{source}: row {i + 1}, column {col!r}: identity value {v[i]:g} is outside [0, 1]"
            )
        out[:, j] = np.nan_to_num(v, nan=0.0) > threshold
    return names, out
