"""fairlearn ``MetricFrame`` views per identity group and per intersection of two axes.

Identity columns are multi-label (a comment can mention several groups, or none), while a
``MetricFrame`` wants one sensitive value per row. We therefore *stack* the data: each row appears
once for every group it belongs to, and the sensitive feature is the group name. Per-group
figures are then exactly the figures on that group's rows; ``difference()`` / ``ratio()`` compare
groups with each other. Intersections stack each row once per (term of axis A, term of axis B)
pair it belongs to, with two sensitive-feature columns.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from harmscope.fairness.jigsaw import rank_auc
from harmscope.safeio import jsonable

# The 24 identity columns of the Jigsaw / Civil Comments data, by axis (used to infer axes).
KNOWN_AXES: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female", "transgender", "other_gender", "women", "men", "trans", "nonbinary"),
    "sexual_orientation": (
        "heterosexual",
        "homosexual_gay_or_lesbian",
        "bisexual",
        "other_sexual_orientation",
        "gay",
        "lesbian",
        "lgbtq",
        "queer",
    ),
    "religion": (
        "christian",
        "jewish",
        "muslim",
        "hindu",
        "buddhist",
        "atheist",
        "other_religion",
        "sikh",
        "catholic",
    ),
    "race": (
        "black",
        "white",
        "asian",
        "latino",
        "other_race_or_ethnicity",
        "race",
        "hispanic",
        "native_american",
        "chinese",
        "mexican",
        "middle_east",
    ),
    "disability": (
        "physical_disability",
        "intellectual_or_learning_disability",
        "psychiatric_or_mental_illness",
        "other_disability",
        "disability",
        "mental_disability",
        "blind",
        "deaf",
    ),
    "national_origin": ("national_origin", "immigrant"),
}


def infer_axes(names: Sequence[str]) -> dict[str, list[str]]:
    """Group identity column names by axis using :data:`KNOWN_AXES`; unknown names go to ``other``."""
    out: dict[str, list[str]] = {}
    for name in names:
        key = str(name).lower()
        axis = next((a for a, terms in KNOWN_AXES.items() if key in terms), "other")
        out.setdefault(axis, []).append(str(name))
    return out


def _safe_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return rank_auc(np.asarray(y_true), np.asarray(y_score))


def _metrics(threshold: float) -> dict[str, Any]:
    """Metric functions for ``MetricFrame`` taking (y_true, score); undefined -> NaN."""

    def fpr(y: np.ndarray, s: np.ndarray) -> float:
        neg = np.asarray(y) == 0
        return float((np.asarray(s)[neg] >= threshold).mean()) if neg.any() else float("nan")

    def fnr(y: np.ndarray, s: np.ndarray) -> float:
        pos = np.asarray(y) == 1
        return float((np.asarray(s)[pos] < threshold).mean()) if pos.any() else float("nan")

    def selection_rate(y: np.ndarray, s: np.ndarray) -> float:
        return float((np.asarray(s) >= threshold).mean()) if len(s) else float("nan")

    def count(y: np.ndarray, s: np.ndarray) -> int:
        return len(y)

    return {"auc": _safe_auc, "fpr": fpr, "fnr": fnr, "selection_rate": selection_rate, "count": count}


def stack_groups(
    y: np.ndarray, score: np.ndarray, member: np.ndarray, names: Sequence[str], col: str = "group"
) -> pd.DataFrame:
    """Long frame (row, group, y, score): one row per (example, group it belongs to)."""
    r, j = np.nonzero(member)
    return pd.DataFrame({"row": r, col: np.asarray(names, dtype=object)[j], "y": y[r], "score": score[r]})


def stack_intersections(
    y: np.ndarray,
    score: np.ndarray,
    member: np.ndarray,
    names: Sequence[str],
    a_cols: Sequence[str],
    b_cols: Sequence[str],
    a: str,
    b: str,
) -> pd.DataFrame:
    """Long frame with one row per (example, term of axis ``a``, term of axis ``b``) it belongs to."""
    idx = {n: i for i, n in enumerate(names)}
    parts = []
    for ta in a_cols:
        for tb in b_cols:
            rows = np.flatnonzero(member[:, idx[ta]] & member[:, idx[tb]])
            if rows.size:
                parts.append(pd.DataFrame({"row": rows, a: ta, b: tb, "y": y[rows], "score": score[rows]}))
    if not parts:
        return pd.DataFrame(columns=["row", a, b, "y", "score"])
    return pd.concat(parts, ignore_index=True)


def metric_frame(long: pd.DataFrame, sensitive: Sequence[str], threshold: float, **kw: Any):
    """A fairlearn ``MetricFrame`` over a stacked frame (``y`` 0/1, ``score``)."""
    from fairlearn.metrics import MetricFrame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetricFrame(
            metrics=_metrics(threshold),
            y_true=long["y"].to_numpy(),
            y_pred=long["score"].to_numpy(),
            sensitive_features=long[list(sensitive)] if len(sensitive) > 1 else long[sensitive[0]],
            **kw,
        )


def frame_summary(mf: Any) -> dict[str, Any]:
    """``difference()`` and ``ratio()`` between groups for each metric (count left out)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diff = mf.difference(method="between_groups")
        ratio = mf.ratio(method="between_groups")
    out: dict[str, Any] = {}
    for m in ("auc", "fpr", "fnr", "selection_rate"):
        out[f"{m}_difference"] = jsonable(diff[m])
        out[f"{m}_ratio"] = jsonable(ratio[m])
    return out


def fairlearn_gaps(long: pd.DataFrame, col: str | Sequence[str], threshold: float) -> dict[str, float | None]:
    """fairlearn's demographic parity and equalized odds differences at ``threshold`` (stacked data)."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    cols = [col] if isinstance(col, str) else list(col)
    sf = long[cols[0]] if len(cols) == 1 else long[cols]
    pred = (long["score"].to_numpy() >= threshold).astype(int)
    yt = long["y"].to_numpy().astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = demographic_parity_difference(yt, pred, sensitive_features=sf)
        eo = equalized_odds_difference(yt, pred, sensitive_features=sf)
    return {"dp_difference": jsonable(dp), "eo_difference": jsonable(eo)}
