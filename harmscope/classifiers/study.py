"""The clean+noisy study on one set with two labels per text (arXiv 2110.01577 on real data).

For each clean budget, :func:`harmscope.classifiers.strategies.budget_splits` holds out a fixed
hash-chosen 20% of the texts with their clean (human) labels, keeps ``budget`` training rows with
clean labels and uses every other training row with its noisy label. Every strategy is trained
with the same backend and seed and scored on the held-out part: overall AUC and the Borkan et al.
subgroup / BPSN / BNSP AUCs per identity group, with bootstrap intervals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import InputError
from harmscope.safeio import atomic_path


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


def run_budget_study(backend: str, df: pd.DataFrame, budgets: list[int], strategies: list[str], *,
                     seed: int = 0, n_boot: int = 200, params: dict[str, Any] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """``summary`` (budget x strategy) and ``per_group`` (budget x strategy x group) frames."""
    from harmscope.classifiers.commands import run_strategies
    from harmscope.classifiers.strategies import budget_splits

    summaries, groups = [], []
    for b in budgets:
        clean, noisy, ev = budget_splits(df, b, seed=seed)
        if progress:
            progress(f"budget {b}: {len(clean)} clean, {len(noisy)} noisy, {len(ev)} held out")
        res = run_strategies(backend, clean, noisy, ev, strategies=strategies, seed=seed, n_boot=n_boot,
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


def run_budget_cli(backend: str, data_spec: str, budgets: str, strategies: list[str], *, seed: int, n_boot: int,
                   params: dict[str, Any], out_dir: str, data_opts: dict[str, Any]) -> None:
    """``harmscope experiment strategies --data ...``: run, write tables, JSON and a plot, print."""
    import click

    from harmscope.classifiers.backends import versions
    from harmscope.classifiers.commands import _load, _print_summary
    bs = parse_budgets(budgets)
    df = _load(data_spec, data_opts, noisy=True)
    if df is None or "noisy_label" not in df.columns:
        raise InputError(f"--data {data_spec}: needs a set with clean and noisy labels of the same texts "
                         "(e.g. toxigen-annotated)")
    t0 = time.perf_counter()
    res = run_budget_study(backend, df, bs, strategies, seed=seed, n_boot=n_boot, params=params,
                           progress=lambda m: click.echo(m, err=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary", "per_group"):
        with atomic_path(out / f"{name}.csv") as tmp:
            res[name].to_csv(tmp, index=False)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown_table(res["summary"]) + "\n", encoding="utf-8")
    plot = plot_budget_study(res["summary"], out / "strategies.png",
                             title=f"{data_spec}: clean+noisy strategies, backend {backend}")
    payload = {"backend": backend, "data": data_spec, "budgets": bs, "seed": seed, "n_boot": n_boot,
               "params": params, "seconds": round(time.perf_counter() - t0, 1),
               "summary": json.loads(res["summary"].to_json(orient="records")),
               "per_group": json.loads(res["per_group"].to_json(orient="records")), "versions": versions()}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    for b in bs:
        _print_summary(res["summary"][res["summary"]["budget"] == b].reset_index(drop=True),
                       f"{backend}, {b} clean labels")
    click.echo(f"wrote {out / 'summary.csv'}, {out / 'summary.md'}, {out / 'per_group.csv'}, "
               f"{out / 'results.json'}, {plot}")


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
