"""Timing of the bias metrics with bootstrap CIs against fairlearn's MetricFrame bootstrap.

Synthetic Civil-Comments-like frame: ROWS rows, 24 identity columns (annotator fractions,
0.5-12 % membership), fractional toxicity labels, scores with ties. Prints the figures.

    .venv/bin/python perf/audit.py [--rows 100000] [--n-boot 1000] [--fairlearn-boot 50]

fairlearn's bootstrap (``MetricFrame(..., n_boot=, ci_quantiles=)``) resamples and re-runs every
metric per group, so it is timed with fewer resamples (``--fairlearn-boot``) and the ratio is
given per resample (both scale linearly in the number of resamples).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from harmscope.classifiers.datasets import CIVIL_IDENTITY_COLS
from harmscope.fairness import bias_metrics
from harmscope.fairness.groups import stack_groups

GROUPS = CIVIL_IDENTITY_COLS  # the 24 Jigsaw identity columns


def make_frame(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rates = np.geomspace(0.005, 0.12, len(GROUPS))
    member = rng.random((n, len(GROUPS))) < rates
    frac = np.where(
        member,
        rng.uniform(0.55, 1.0, member.shape),
        rng.uniform(0, 0.2, member.shape) * (rng.random(member.shape) < 0.1),
    )
    groups = pd.DataFrame(np.round(frac, 2), columns=list(GROUPS))
    y = np.clip(rng.beta(0.6, 4.0, n) + 0.15 * member[:, 10], 0, 1)  # toxicity fractions, one group raised
    s = np.round(np.clip(0.2 + 0.6 * (y >= 0.5) + rng.normal(0, 0.2, n) + 0.1 * member[:, 15], 0, 1), 3)
    return y, s, groups


def time_fairlearn(
    y: np.ndarray, s: np.ndarray, groups: pd.DataFrame, n_boot: int, threshold: float
) -> float:
    from fairlearn.metrics import MetricFrame

    from harmscope.fairness import rank_auc

    def auc(a: np.ndarray, b: np.ndarray) -> float:
        return rank_auc(np.asarray(a), np.asarray(b))

    def fpr(a: np.ndarray, b: np.ndarray) -> float:
        return float((b[a == 0] >= threshold).mean())

    def fnr(a: np.ndarray, b: np.ndarray) -> float:
        return float((b[a == 1] < threshold).mean())

    def sel(a: np.ndarray, b: np.ndarray) -> float:
        return float((b >= threshold).mean())

    long = stack_groups((y >= 0.5).astype(int), s, groups.to_numpy() > 0.5, list(groups.columns))
    t = time.perf_counter()
    mf = MetricFrame(
        metrics={"auc": auc, "fpr": fpr, "fnr": fnr, "selection_rate": sel},
        y_true=long["y"].to_numpy(),
        y_pred=long["score"].to_numpy(),
        sensitive_features=long["group"],
        n_boot=n_boot,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    _ = mf.by_group_ci
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--fairlearn-boot", type=int, default=50)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--full-audit", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    y, s, groups = make_frame(args.rows)
    print(
        f"rows {args.rows}, identity columns {groups.shape[1]}, bootstrap resamples {args.n_boot}, "
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}"
    )
    t = time.perf_counter()
    r = bias_metrics(y, s, groups, n_boot=args.n_boot, seed=0, threshold=args.threshold)
    ours = time.perf_counter() - t
    pg = r.per_group
    print(
        f"harmscope bias_metrics (subgroup/BPSN/BNSP AUC, AEGs, FPR/FNR/selection rate, power means, "
        f"final score, gaps; all with CIs): {ours:.1f} s  ({1000 * ours / max(args.n_boot, 1):.1f} ms per resample)"
    )
    print(
        f"  groups scored {int((~pg['skipped']).sum())}/{len(pg)}, final score {r.overall['final_score']:.4f} "
        f"[{r.overall['final_score_lo']:.4f}, {r.overall['final_score_hi']:.4f}]"
    )
    worst = pg.nsmallest(1, "bpsn_auc").iloc[0]
    print(
        f"  lowest BPSN: {worst['subgroup']} {worst['bpsn_auc']:.3f}; "
        f"lowest BNSP: {pg.nsmallest(1, 'bnsp_auc').iloc[0]['subgroup']}"
    )
    if args.full_audit:
        from harmscope.fairness import audit

        df = pd.concat([pd.DataFrame({"target": y}), groups], axis=1)
        t = time.perf_counter()
        res = audit(s, df, group_cols=list(groups.columns), n_boot=args.n_boot, seed=0, counterfactual=False)
        full = time.perf_counter() - t
        print(
            f"full audit() (Borkan metrics, MetricFrame per group, {len(res.tables['intersections'])} "
            f"intersection cells with CIs, ROC points): {full:.1f} s"
        )
    if args.fairlearn_boot:
        fl = time_fairlearn(y, s, groups, args.fairlearn_boot, args.threshold)
        per_fl = fl / args.fairlearn_boot
        per_ours = ours / max(args.n_boot, 1)
        print(
            f"fairlearn MetricFrame(n_boot={args.fairlearn_boot}) with auc/fpr/fnr/selection rate per group: "
            f"{fl:.1f} s ({1000 * per_fl:.1f} ms per resample; {per_fl * args.n_boot:.0f} s for {args.n_boot})"
        )
        print(
            f"ratio per resample fairlearn / harmscope: {per_fl / per_ours:.1f}x "
            "(harmscope also computes BPSN/BNSP/AEG, which fairlearn does not)"
        )


if __name__ == "__main__":
    main()
