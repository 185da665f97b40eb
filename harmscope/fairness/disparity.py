"""Violation-rate disparity between groups: Wilson intervals (:func:`harmscope.stats.wilson`), bootstrap max gap, chi-square test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import InputError
from harmscope.fairness.bootstrap import CHUNK_SIZE, basic_ci, bootstrap_chunks
from harmscope.stats import wilson

DEFAULT_MIN_SIZE = 10


def pearson_chi2(k: np.ndarray, n: np.ndarray) -> tuple[float, int, float]:
    """Pearson chi-square of independence for a groups x {violation, no violation} table."""
    from scipy import stats

    k = np.asarray(k, float)
    n = np.asarray(n, float)
    table = np.stack([k, n - k], axis=1)
    expected = np.outer(n, table.sum(0)) / n.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = len(k) - 1
    return stat, dof, float(stats.chi2.sf(stat, dof))


def _as_outcome(values: pd.Series, col: str) -> pd.Series:
    """Outcomes as 0/1 floats with NaN for abstentions; reject anything else."""
    if values.dtype == bool:
        return values.astype(float)
    obj = values.astype(object)
    mapped = obj.map(lambda v: {True: 1.0, False: 0.0}.get(v, v) if isinstance(v, bool) else v)
    num = pd.to_numeric(mapped, errors="coerce")
    bad = num.notna() & ~num.isin([0.0, 1.0]) | (num.isna() & obj.notna())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"row {i + 1}, field {col!r}: outcome {values.iloc[i]!r} is not 0/1/true/false/empty"
        )
    return num.astype(float)


def violation_disparity(
    frame: pd.DataFrame,
    *,
    group_col: str = "group",
    outcome_col: str = "violation",
    n_boot: int = 1000,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    level: float = 0.95,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """Per-group violation rates with Wilson CIs, the largest gap with a bootstrap CI, chi-square.

    Rows whose outcome is missing (an abstaining judge) or whose group is missing are left out.
    Groups with fewer than ``min_size`` judged rows are listed under ``skipped`` and take no part
    in the gap or the test. The bootstrap resamples within each group (stratified), which for a
    0/1 outcome is a binomial draw per group; chunks use seeds spawned from ``seed``.
    """
    for col in (group_col, outcome_col):
        if col not in frame.columns:
            raise InputError(f"column {col!r} not found (columns: {', '.join(map(str, frame.columns))})")
    out = _as_outcome(frame[outcome_col], outcome_col)
    keep = out.notna() & frame[group_col].notna()
    df = pd.DataFrame({"group": frame.loc[keep, group_col].astype(str), "y": out[keep]})
    agg = df.groupby("group", sort=True)["y"].agg(["sum", "count"])
    groups, skipped = [], []
    for name, r in agg.iterrows():
        k, n = int(r["sum"]), int(r["count"])
        _, lo, hi = wilson(k, n, level=level)
        groups.append({"group": name, "k": k, "n": n, "rate": k / n, "lo": lo, "hi": hi})
        if n < min_size:
            skipped.append({"group": name, "n": n, "reason": f"n={n} below min_size={min_size}"})
    result: dict[str, Any] = {
        "groups": groups,
        "skipped": skipped,
        "n_dropped": int((~keep).sum()),
        "params": {
            "n_boot": n_boot,
            "seed": seed,
            "min_size": min_size,
            "level": level,
            "chunk_size": chunk_size,
        },
        "notes": [],
    }
    used = [g for g in groups if g["n"] >= min_size]
    if len(used) < 2:
        result["max_gap"] = {
            "value": None,
            "lo": None,
            "hi": None,
            "reason": "fewer than two groups of min_size",
        }
        result["chi2"] = {
            "statistic": None,
            "dof": None,
            "p_value": None,
            "reason": "fewer than two groups of min_size",
        }
        return result
    k = np.array([g["k"] for g in used])
    n = np.array([g["n"] for g in used])
    rates = k / n
    hi_i, lo_i = int(np.argmax(rates)), int(np.argmin(rates))
    draws = []
    for chunk in bootstrap_chunks(n_boot, seed, chunk_size):
        kb = chunk.rng().binomial(n, rates, size=(chunk.size, n.size)) / n
        draws.append(kb.max(1) - kb.min(1))
    boot = np.concatenate(draws) if draws else np.zeros(0)
    gap = float(rates[hi_i] - rates[lo_i])
    blo, bhi = basic_ci(gap, boot, level)
    result["max_gap"] = {
        "value": gap,
        "lo": None if np.isnan(blo) else float(blo),
        "hi": None if np.isnan(bhi) else float(bhi),
        "high_group": used[hi_i]["group"],
        "low_group": used[lo_i]["group"],
    }
    total = k.sum()
    if total == 0 or total == n.sum():
        reason = "every judged reply has the same outcome"
        result["chi2"] = {"statistic": None, "dof": None, "p_value": None, "reason": reason}
    else:
        stat, dof, p = pearson_chi2(k, n)
        result["chi2"] = {"statistic": stat, "dof": dof, "p_value": p}
        if (np.outer(n, [total, n.sum() - total]) / n.sum() < 5).any():
            result["notes"].append(
                "some expected cell counts are below 5: the chi-square p-value is approximate"
            )
    return result
