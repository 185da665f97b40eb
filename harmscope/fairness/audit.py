"""Bias audit of a toxicity classifier (or of given scores) on a dataset with identity columns.

``audit`` computes the Borkan et al. metrics with bootstrap CIs, fairlearn ``MetricFrame`` views
per group and per intersection of two axes, ROC points, and (when a classifier is given)
counterfactual identity swaps and HateCheck-style functional suites; it ranks the groups the
classifier treats worst and returns a :class:`harmscope.types.AuditResult`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.engines import chunk_mapper
from harmscope.errors import InputError
from harmscope.fairness.counterfactual import run_counterfactual
from harmscope.fairness.functional import functional_report
from harmscope.fairness.groups import (
    fairlearn_gaps,
    frame_summary,
    infer_axes,
    metric_frame,
    stack_groups,
    stack_intersections,
)
from harmscope.fairness.jigsaw import bias_metrics, intersection_columns
from harmscope.fairness.settings import BiasSettings
from harmscope.fairness.validate import as_labels, as_membership, as_scores
from harmscope.safeio import atomic_path, atomic_write_text, jsonable, save_figure
from harmscope.types import AuditResult

ROC_POINTS = 51
MEANINGS = {
    "bpsn_auc": "non-toxic text about the group scored above toxic text elsewhere (false positives against it)",
    "bnsp_auc": "toxic text about the group scored below non-toxic text elsewhere (missed toxicity about it)",
    "subgroup_auc": "the classifier separates toxic from non-toxic text poorly within the group",
}


# ------------------------------------------------------------------ scoring
def score_function(classifier: Any) -> tuple[Callable[[list[str]], np.ndarray], str]:
    """A ``texts -> P(toxic)`` function and a name for a spec string, an estimator or a callable."""
    if isinstance(classifier, str | Path):
        from harmscope.classifiers.backends import load_classifier  # sklearn/torch: loaded on use

        est = load_classifier(str(classifier))
        name = str(classifier)
        spec: str | None = str(classifier)
    else:
        est, name, spec = classifier, type(classifier).__name__, None
    if hasattr(est, "predict_proba"):

        def fn(texts: list[str]) -> np.ndarray:
            from harmscope.classifiers.partitioned import predict_dataset  # local engine: plain predict_proba

            p = np.asarray(predict_dataset(est, texts, spec=spec), dtype=float)
            return p[:, 1] if p.ndim == 2 else p

        return fn, name
    if callable(est):
        return (lambda texts: np.asarray(est(texts), dtype=float)), getattr(est, "__name__", name)
    raise InputError(f"classifier {name}: needs predict_proba(texts) or to be callable")


def _chunk_mapper() -> Any:
    """Bootstrap chunks run on the engine in force (None = in-process)."""
    return chunk_mapper()


# MetricFrame column -> the bias_metrics column whose bootstrap interval it takes
_CI_OF = (("auc", "subgroup_auc"), ("fpr", "fpr"), ("fnr", "fnr"), ("selection_rate", "selection_rate"))


def _add_cis(row: dict[str, Any], ci: pd.DataFrame, group: str) -> None:
    """Copy the bootstrap intervals of ``group`` (a row of ``bias_metrics(...).per_group``) into ``row``."""
    for m, c in _CI_OF:
        row[f"{m}_lo"], row[f"{m}_hi"] = ci.loc[group, f"{c}_lo"], ci.loc[group, f"{c}_hi"]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [jsonable(r) for r in df.to_dict(orient="records")]


def roc_points(
    y: np.ndarray, s: np.ndarray, n_points: int = ROC_POINTS
) -> tuple[np.ndarray, np.ndarray] | None:
    """ROC curve resampled on an even FPR grid (upper envelope at each FPR); None for one class."""
    from sklearn.metrics import roc_curve

    if y.min() == y.max():
        return None
    fpr, tpr, _ = roc_curve(y, s)
    grid = np.linspace(0.0, 1.0, n_points)
    return grid, np.interp(grid, fpr, tpr)


# ------------------------------------------------------------------ audit
def audit(
    classifier_or_scores: Any,
    data: pd.DataFrame,
    settings: BiasSettings | None = None,
    *,
    group_cols: Sequence[str] | None = None,
    text_col: str = "text",
    label_col: str | None = None,
    axes: dict[str, list[str]] | None = None,
    intersections: Sequence[tuple[str, str]] | None = None,
    counterfactual: bool = True,
    counterfactual_sentences: Sequence[str] | None = None,
    lexicon: str | Path | None = None,
    functional: pd.DataFrame | None = None,
    k_worst: int = 3,
    data_name: str | None = None,
    **overrides: Any,
) -> AuditResult:
    """Audit ``classifier_or_scores`` (spec, estimator, callable, or one score per row) on ``data``.

    ``settings`` (a :class:`~harmscope.fairness.settings.BiasSettings`, or its field names as
    keyword ``overrides``) carries the thresholds, bootstrap size and seed once for every part of
    the audit; the decision threshold defaults to 0.5.

    ``data`` holds ``text`` (when a classifier is given), the label (``label_col``, default
    ``target`` or ``label``; values in [0, 1]) and identity columns ``group_cols`` (default
    ``data.attrs["group_cols"]``). ``axes`` maps axis -> identity columns (default
    ``data.attrs["group_axes"]`` or inferred from known names); intersections default to every
    pair of axes. ``functional`` is a suite from :func:`harmscope.fairness.functional.read_suite`.
    """
    cfg = BiasSettings.of(settings, **overrides)
    cfg = cfg.replace(threshold=cfg.decision_threshold)
    threshold, label_threshold, group_threshold = cfg.decision_threshold, cfg.label_threshold, cfg.group_threshold
    src = data_name or str(data.attrs.get("source", "data"))
    group_cols = list(group_cols or data.attrs.get("group_cols") or [])
    if not group_cols:
        raise InputError(f"{src}: no identity columns given (use --group-cols)")
    missing = [c for c in group_cols if c not in data.columns]
    if missing:
        raise InputError(
            f"{src}: identity column {missing[0]!r} not found (columns: {', '.join(map(str, data.columns))})"
        )
    if label_col is None:
        label_col = "target" if "target" in data.columns else "label"
    if label_col not in data.columns:
        raise InputError(f"{src}: label column {label_col!r} not found")
    y = as_labels(data[label_col].to_numpy(), source=src, field=label_col)

    notes: list[str] = []
    score_fn: Callable[[list[str]], np.ndarray] | None = None
    if (
        isinstance(classifier_or_scores, str | Path)
        or hasattr(classifier_or_scores, "predict_proba")
        or callable(classifier_or_scores)
    ):
        score_fn, clf_name = score_function(classifier_or_scores)
        if text_col not in data.columns:
            raise InputError(f"{src}: text column {text_col!r} not found")
        s = as_scores(
            score_fn(data[text_col].astype(str).tolist()), len(data), source=f"classifier {clf_name}"
        )
    else:
        clf_name = "given scores"
        s = as_scores(classifier_or_scores, len(data), source=src, field="scores")
    if not ((s >= 0) & (s <= 1)).all():
        notes.append("scores fall outside [0, 1]: the decision threshold is applied to raw scores")

    groups = data[group_cols]
    bias = bias_metrics(y, s, groups, cfg, source=src, map_chunks=_chunk_mapper())
    notes.extend(bias.notes)
    names, member = as_membership(groups, len(data), threshold=group_threshold, source=src)
    yb = (y >= label_threshold).astype(int)
    pg = bias.per_group
    scored = pg.loc[~pg["skipped"], "subgroup"].tolist()

    # axes for intersections
    if axes is None:
        ga = data.attrs.get("group_axes")
        axes = {}
        if ga:
            for g in group_cols:
                axes.setdefault(str(ga.get(g, "other")), []).append(g)
        else:
            axes = infer_axes(group_cols)
    axis_of = {g: a for a, cols in axes.items() for g in cols}

    tables: dict[str, list[dict[str, Any]]] = {}
    jig = pg.copy()
    jig.insert(1, "axis", [axis_of.get(g, "other") for g in jig["subgroup"]])
    tables["jigsaw"] = _records(jig)

    # fairlearn MetricFrame per group (stacked rows of scored groups)
    overall: dict[str, Any] = {k: v for k, v in bias.overall.items()}
    idx = [names.index(g) for g in scored]
    mf_rows: list[dict[str, Any]] = []
    if scored:
        long = stack_groups(yb, s, member[:, idx], scored)
        mf = metric_frame(long, ["group"], threshold)
        by = mf.by_group
        ci = pg.set_index("subgroup")
        for g in scored:
            r = {"group": g, "axis": axis_of.get(g, "other"), **{m: by.loc[g, m] for m in by.columns}}
            r["count"] = int(r["count"])
            _add_cis(r, ci, g)
            mf_rows.append(jsonable(r))
        overall["metricframe"] = frame_summary(mf)
        gaps = (
            fairlearn_gaps(long, "group", threshold)
            if len(scored) > 1
            else {"dp_difference": None, "eo_difference": None}
        )
        overall["dp_difference"] = gaps["dp_difference"]
        overall["eo_difference"] = gaps["eo_difference"]
    else:
        notes.append("no identity group reaches min_size: group tables are empty")
    tables["metricframe"] = mf_rows

    # intersections of two axes
    tables["intersections"] = _intersections(y, yb, s, groups, names, member, axes, intersections, cfg)

    # ROC points
    roc_rows: list[dict[str, Any]] = []
    for g, mask in [("overall", np.ones(len(y), bool))] + [(g, member[:, names.index(g)]) for g in scored]:
        pts = roc_points(yb[mask], s[mask])
        if pts is not None:
            roc_rows += [{"group": g, "fpr": float(f), "tpr": float(t)} for f, t in zip(*pts, strict=True)]
    tables["roc"] = roc_rows

    # counterfactual swaps and functional suites need a classifier
    if counterfactual and score_fn is not None:
        d_rows, a_rows, cf_notes = run_counterfactual(
            score_fn, cfg, sentences=counterfactual_sentences, lexicon=lexicon
        )
        tables["counterfactual"], tables["counterfactual_axes"] = jsonable(d_rows), jsonable(a_rows)
        notes.extend(cf_notes)
    elif counterfactual:
        notes.append("counterfactual swaps skipped: they need a classifier, not precomputed scores")
    if functional is not None:
        if score_fn is None:
            notes.append("functional suite skipped: it needs a classifier, not precomputed scores")
        else:
            fs = score_fn(functional["text"].tolist())
            tables["functional"] = jsonable(functional_report(functional, fs, threshold=threshold))

    worst = rank_worst(pg, k_worst)
    params = {
        "threshold": threshold,
        "n_boot": cfg.n_boot,
        "seed": cfg.seed,
        "min_size": cfg.min_size,
        "label_col": label_col,
        "label_threshold": label_threshold,
        "group_threshold": group_threshold,
        "group_cols": group_cols,
        "axes": axes,
        "chunk_size": cfg.chunk_size,
        "level": cfg.level,
        "power": cfg.power,
        "counterfactual": bool(counterfactual and score_fn is not None),
    }
    return AuditResult(
        classifier=clf_name,
        data=src,
        params=jsonable(params),
        overall=jsonable(overall),
        tables=tables,
        worst_groups=worst,
        notes=notes,
    )


def rank_worst(per_group: pd.DataFrame, k: int = 3) -> list[dict[str, Any]]:
    """Lowest BPSN (false positives against the group), lowest BNSP (missed toxicity), lowest subgroup AUC."""
    out: list[dict[str, Any]] = []
    for metric in ("bpsn_auc", "bnsp_auc", "subgroup_auc"):
        df = per_group.dropna(subset=[metric]).nsmallest(k, metric)
        for rank, (_, r) in enumerate(df.iterrows(), start=1):
            out.append(
                jsonable(
                    {
                        "metric": metric,
                        "rank": rank,
                        "subgroup": r["subgroup"],
                        "n": r["n"],
                        "value": r[metric],
                        "lo": r[f"{metric}_lo"],
                        "hi": r[f"{metric}_hi"],
                        "meaning": MEANINGS[metric],
                    }
                )
            )
    return out


def _intersections(
    y: np.ndarray,
    yb: np.ndarray,
    s: np.ndarray,
    groups: pd.DataFrame,
    names: list[str],
    member: np.ndarray,
    axes: dict[str, list[str]],
    pairs: Sequence[tuple[str, str]] | None,
    cfg: BiasSettings,
) -> list[dict[str, Any]]:
    """Metric rows per intersection of two axes' groups (cells below ``min_size`` listed as skipped)."""
    threshold, min_size = cfg.decision_threshold, cfg.min_size
    if pairs is None:
        pairs = list(itertools.combinations(sorted(a for a in axes if a != "other" or len(axes) == 1), 2))
    rows: list[dict[str, Any]] = []
    cells: list[tuple[str, str, str, str]] = []
    for a, b in pairs:
        if a not in axes or b not in axes:
            raise InputError(f"intersection {a} x {b}: unknown axis (axes: {', '.join(sorted(axes))})")
        long = stack_intersections(yb, s, member, names, axes[a], axes[b], a, b)
        if long.empty:
            continue
        sizes = long.groupby([a, b]).size()
        big = sizes[sizes >= min_size]
        for (ta, tb), n in sizes.items():
            if n < min_size:
                rows.append(
                    {
                        "axis_a": a,
                        "group_a": ta,
                        "axis_b": b,
                        "group_b": tb,
                        "count": int(n),
                        "reason": f"skipped: n={int(n)} below min_size={min_size}",
                    }
                )
        if big.empty:
            continue
        keep = long.set_index([a, b]).index.isin(big.index)
        mf = metric_frame(long[keep], [a, b], threshold)
        for (ta, tb), r in mf.by_group.iterrows():
            if not np.isfinite(r["count"]) or r["count"] == 0:
                continue  # MetricFrame lists every combination, including empty ones
            rows.append(
                {
                    "axis_a": a,
                    "group_a": ta,
                    "axis_b": b,
                    "group_b": tb,
                    **r.to_dict(),
                    "count": int(r["count"]),
                    "reason": None,
                }
            )
            cells.append((a, ta, b, tb))
    if not cells:
        return [jsonable(r) for r in rows]
    # bootstrap CIs and the Borkan metrics for each kept cell
    inter = intersection_columns(groups.fillna(0), [(ta, tb) for _, ta, _, tb in cells])
    rep = bias_metrics(y, s, inter, cfg, map_chunks=_chunk_mapper())
    ci = rep.per_group.set_index("subgroup")
    for r in rows:
        if r.get("reason"):
            continue
        key = f"{r['group_a']} & {r['group_b']}"
        _add_cis(r, ci, key)
        for m in ("bpsn_auc", "bnsp_auc"):
            r[m], r[f"{m}_lo"], r[f"{m}_hi"] = ci.loc[key, m], ci.loc[key, f"{m}_lo"], ci.loc[key, f"{m}_hi"]
        if ci.loc[key, "reason"]:
            r["reason"] = ci.loc[key, "reason"]
    return [jsonable(r) for r in rows]


# ------------------------------------------------------------------ output
def write_audit(result: AuditResult, out_dir: str | Path) -> list[Path]:
    """Write ``audit.json`` (the AuditResult) and one CSV per table (plus ``worst_groups.csv``)."""
    out = Path(out_dir)
    written = []
    for name, rows in {**result.tables, "worst_groups": result.worst_groups}.items():
        p = out / f"{name}.csv"
        with atomic_path(p) as tmp:  # each file complete or the previous one kept
            pd.DataFrame(rows).to_csv(tmp, index=False)
        written.append(p)
    atomic_write_text(out / "audit.json",  # last: its presence means the tables are complete
                      json.dumps(result.model_dump(mode="json"), indent=2, allow_nan=False))
    return [out / "audit.json", *written]


def plot_bias_aucs(result: AuditResult, path: str | Path, *, title: str | None = None) -> Path:
    """Dot plot of subgroup / BPSN / BNSP AUC per scored group with 95% bootstrap intervals,
    groups sorted by their lowest AUC (worst first, at the top); written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.tables.get("jigsaw", []) if r.get("subgroup_auc") is not None]
    metrics = [("subgroup_auc", "subgroup", "#1f77b4"), ("bpsn_auc", "BPSN", "#d62728"),
               ("bnsp_auc", "BNSP", "#2ca02c")]

    def worst(r: dict[str, Any]) -> float:
        return min(float(r[m]) for m, _, _ in metrics if r.get(m) is not None)

    rows.sort(key=worst, reverse=True)
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * max(len(rows), 3) + 1.2))
    for k, (m, label, color) in enumerate(metrics):
        ys = np.arange(len(rows)) + (k - 1) * 0.22
        vals = [r.get(m) for r in rows]
        lo = [r.get(f"{m}_lo") for r in rows]
        hi = [r.get(f"{m}_hi") for r in rows]
        for y, v, a, b in zip(ys, vals, lo, hi, strict=True):
            if v is None:
                continue
            if a is not None and b is not None:
                ax.plot([a, b], [y, y], color=color, alpha=0.5, lw=1.5)
        ax.scatter([v for v in vals if v is not None], [y for y, v in zip(ys, vals, strict=True) if v is not None],
                   color=color, s=14, label=label, zorder=3)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([f"{r['subgroup']} (n={r['n']})" for r in rows], fontsize=8)
    overall = result.overall.get("overall_auc")
    if overall is not None:
        ax.axvline(float(overall), color="grey", ls="--", lw=1, label=f"overall {float(overall):.3f}")
    ax.set_xlabel("AUC (95% bootstrap interval)")
    ax.set_title(title or f"{result.classifier} on {result.data}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)
