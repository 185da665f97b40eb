"""The clean+noisy study on one set with two labels per text (arXiv 2110.01577 on real data).

For each clean budget, :func:`harmscope.classifiers.strategies.budget_splits` holds out a fixed
hash-chosen 20% of the texts with their clean (human) labels, keeps ``budget`` training rows with
clean labels and uses every other training row with its noisy label. Every strategy is trained
with the same backend and seed and scored on the held-out part: overall AUC and the Borkan et al.
subgroup / BPSN / BNSP AUCs per identity group, with bootstrap intervals.

Scoring is passed in (``evaluate(scores, eval_frame, n_boot=, seed=) -> (overall, per_group)``):
the study trains and predicts; the fairness metrics come from the caller (the CLI passes
:func:`harmscope.classifiers.commands.evaluate`), so this module imports no later stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.backends.base import BACKENDS
from harmscope.classifiers.strategies import budget_splits, strategy_names, train
from harmscope.errors import InputError
from harmscope.safeio import atomic_path

#: ``evaluate(scores, eval_frame, *, n_boot, seed) -> (overall figures, per-group frame)``
Evaluate = Callable[..., tuple[dict[str, Any], pd.DataFrame]]


def parse_budgets(text: str) -> list[int]:
    """'250,1000,4000' -> [250, 1000, 4000]; a bad item raises InputError naming --budgets."""
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            v = int(item)
        except ValueError:
            raise InputError(f"--budgets: {item!r} is not a whole number") from None
        if v <= 0:
            raise InputError(f"--budgets: {v} must be > 0")
        out.append(v)
    if not out:
        raise InputError("--budgets: give at least one budget")
    return out


def backend_factory(backend: str, params: dict[str, Any], seed: int, clean: pd.DataFrame | None) -> Any:
    """A zero-argument maker of fresh ``backend`` estimators with ``params`` (checked now: a bad
    ``--param`` fails before any data is read)."""
    cls = BACKENDS.get(backend).obj
    p = dict(params)
    defaults = cls().get_params()
    if "seed" in defaults:
        p.setdefault("seed", seed)
    if "subtype_cols" in defaults and clean is not None and clean.attrs.get("subtype_cols"):
        p.setdefault("subtype_cols", tuple(clean.attrs["subtype_cols"]))  # extra heads (finetune)
    try:
        cls(**p)
    except TypeError as exc:
        raise InputError(f"--param: {exc}") from None
    _check_param_types(params, defaults)
    return lambda: cls(**p)


_POSITIVE = {"C", "finetune_C", "max_iter", "batch_size", "max_length", "bits", "max_features", "min_df",
             "max_steps", "finetune_steps", "lr", "epochs", "n_estimators"}


def _check_param_types(params: dict[str, Any], defaults: dict[str, Any]) -> None:
    """``--param`` values must have the type of the backend's default (numbers stay numbers)."""
    for k, v in params.items():
        d = defaults.get(k)
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise InputError(f"--param {k}={v!r}: expected true or false")
            continue
        numeric = isinstance(d, int | float) or k in _POSITIVE
        if numeric and v is not None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InputError(f"--param {k}={v!r}: expected a number")
            if isinstance(d, int) and not isinstance(d, bool) and isinstance(v, float) and not v.is_integer():
                raise InputError(f"--param {k}={v!r}: expected an integer")
            if not math.isfinite(v):
                raise InputError(f"--param {k}={v!r}: expected a finite number")
            if k in _POSITIVE and v <= 0:
                raise InputError(f"--param {k}={v!r}: must be > 0")


def run_strategies(backend: str, clean: pd.DataFrame, noisy: pd.DataFrame, ev: pd.DataFrame, *,
                   evaluate: Evaluate, strategies: list[str] | None = None, seed: int = 0, n_boot: int = 200,
                   params: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Train each strategy (default: every registered one), score ``ev`` with ``evaluate``; returns
    ``summary`` (one row per strategy) and ``per_group`` (strategy x subgroup) frames."""
    make = backend_factory(backend, params or {}, seed, clean)
    rows, groups = [], []
    for name in strategies or strategy_names():
        t0 = time.perf_counter()
        model = train(name, make, clean, noisy, seed=seed)
        train_s = time.perf_counter() - t0
        scores = model.predict_proba(ev)[:, 1]
        overall, per_group = evaluate(scores, ev, n_boot=n_boot, seed=seed)
        row = {"strategy": name, **{k: v for k, v in overall.items() if not isinstance(v, dict | list)},
               "train_seconds": round(train_s, 2)}
        card = getattr(model, "card_", {}) or {}
        if "filtered_out" in card:
            row["filtered_out"] = card["filtered_out"]
        rows.append(row)
        if len(per_group):
            groups.append(per_group.assign(strategy=name))
        if progress:
            auc = row.get("overall_auc")
            shown = f"{auc:.4f}" if isinstance(auc, int | float) and math.isfinite(auc) else "undefined"
            progress(f"{name}: AUC {shown} ({train_s:.1f} s)")
    per = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame()
    if len(per):
        per = per[["strategy", *[c for c in per.columns if c != "strategy"]]]
    return {"summary": pd.DataFrame(rows), "per_group": per}


def run_budget_study(backend: str, df: pd.DataFrame, budgets: list[int], strategies: list[str], *,
                     evaluate: Evaluate, seed: int = 0, n_boot: int = 200, params: dict[str, Any] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """``summary`` (budget x strategy) and ``per_group`` (budget x strategy x group) frames."""
    summaries, groups = [], []
    for b in budgets:
        clean, noisy, ev = budget_splits(df, b, seed=seed)
        if progress:
            progress(f"budget {b}: {len(clean)} clean, {len(noisy)} noisy, {len(ev)} held out")
        res = run_strategies(backend, clean, noisy, ev, evaluate=evaluate, strategies=strategies, seed=seed,
                             n_boot=n_boot,
                             params=params, progress=(lambda m, b=b: progress(f"  [{b}] {m}")) if progress else None)
        summaries.append(res["summary"].assign(budget=b, clean_rows=len(clean), noisy_rows=len(noisy),
                                               eval_rows=len(ev)))
        if len(res["per_group"]):
            groups.append(res["per_group"].assign(budget=b))
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["budget", *[c for c in summary.columns if c != "budget"]]]
    per = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame()
    if len(per):
        per = per[["budget", *[c for c in per.columns if c != "budget"]]]
    return {"summary": summary, "per_group": per}


def plot_budget_study(summary: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Two panels (overall AUC, power-mean BPSN AUC) against the clean budget, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("overall_auc", "overall AUC"), ("power_mean_bpsn_auc", "BPSN AUC (power mean)"),
               ("power_mean_subgroup_auc", "subgroup AUC (power mean)")]
    metrics = [m for m in metrics if m[0] in summary.columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, (col, label) in zip(axes[0], metrics, strict=True):
        for name, g in summary.groupby("strategy", sort=False):
            g = g.sort_values("budget")
            ax.plot(g["budget"], g[col], marker="o", label=str(name))
            lo, hi = f"{col}_lo", f"{col}_hi"
            if lo in g and hi in g and g[lo].notna().all():
                ax.fill_between(g["budget"], g[lo], g[hi], alpha=0.08)
        ax.set_xscale("log")
        ax.set_xlabel("clean labels (rest noisy)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def best_by_budget(summary: pd.DataFrame, col: str = "overall_auc") -> dict[int, str]:
    """The winning strategy per budget on ``col`` (for the docs)."""
    out = {}
    for b, g in summary.groupby("budget"):
        g = g[np.isfinite(g[col].astype(float))]
        if len(g):
            out[int(b)] = str(g.loc[g[col].astype(float).idxmax(), "strategy"])
    return out


def markdown_table(summary: pd.DataFrame) -> str:
    """The budget x strategy summary as a Markdown table (value [95% CI]; best per budget in bold)."""
    cols = [("overall_auc", "overall AUC"), ("power_mean_subgroup_auc", "subgroup AUC (pm)"),
            ("power_mean_bpsn_auc", "BPSN (pm)"), ("power_mean_bnsp_auc", "BNSP (pm)"),
            ("final_score", "final bias score")]
    cols = [c for c in cols if c[0] in summary.columns]
    lines = ["| clean labels | strategy | " + " | ".join(t for _, t in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for b, g in summary.groupby("budget", sort=True):
        best = {c: g[c].max() for c, _ in cols}
        for _, r in g.iterrows():
            cells = []
            for c, _ in cols:
                v, lo, hi = r.get(c), r.get(f"{c}_lo"), r.get(f"{c}_hi")
                s = "-" if v is None or pd.isna(v) else f"{v:.3f}"
                if s != "-" and lo is not None and not pd.isna(lo):
                    s += f" [{lo:.3f}, {hi:.3f}]"
                cells.append(f"**{s}**" if v == best[c] else s)
            lines.append(f"| {int(b):,} | {r['strategy']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
