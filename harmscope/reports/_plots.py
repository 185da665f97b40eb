"""Report plots as PNG bytes (matplotlib, Agg backend, no display needed).

All plots use the shared palette (``_palette``): rates and grades on one colour-blind-safe
sequential scale, categories (models, AUC metrics, identity axes) in Okabe-Ito colours. Every
figure states its n and what its intervals are. Labels come from results (model names, group
names) and are drawn as plain text: matplotlib's mathtext is switched off for them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harmscope.reports import _palette as pal  # noqa: E402

DPI = 130
plt.rcParams.update({"font.size": 8, "axes.edgecolor": "#8a9099", "axes.labelcolor": pal.INK,
                     "xtick.color": pal.INK, "ytick.color": pal.INK, "axes.titleweight": "bold",
                     "axes.spines.top": False, "axes.spines.right": False, "text.parse_math": False})


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _t(s: Any, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _pct_axis(ax, which: str = "x") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.xaxis if which == "x" else ax.yaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def heatmap(rows: Sequence[dict], row_key: str, col_key: str, value: str = "rate", *,
            title: str, max_rows: int = 40) -> bytes | None:
    """Matrix of rates over (row_key, col_key) cells on the grade scale; missing cells are grey."""
    rows = [r for r in rows if np.isfinite(_num(r.get(value)))]
    if not rows:
        return None
    rkeys = sorted({str(r[row_key]) for r in rows})[:max_rows]
    ckeys = sorted({str(r[col_key]) for r in rows})
    mat = np.full((len(rkeys), len(ckeys)), np.nan)
    ns = np.zeros_like(mat)
    for r in rows:
        if str(r[row_key]) in rkeys:
            i, j = rkeys.index(str(r[row_key])), ckeys.index(str(r[col_key]))
            mat[i, j] = _num(r[value])
            ns[i, j] = _num(r.get("n", 0))
    return _matrix(mat, rkeys, ckeys, title=title,
                   note=f"cells: violation rate; n per cell {int(np.nanmin(ns))}–{int(np.nanmax(ns))} judged replies; "
                        "grey = no probes")


def _matrix(mat: np.ndarray, rkeys: list[str], ckeys: list[str], *, title: str, note: str,
            marks: np.ndarray | None = None) -> bytes:
    cm, norm = pal.cmap()
    fig, ax = plt.subplots(figsize=(min(10, 2.4 + 0.62 * len(ckeys)), max(2.2, 0.2 * len(rkeys) + 1.4)))
    im = ax.imshow(np.ma.masked_invalid(mat), aspect="auto", cmap=cm, norm=norm)
    label_cells = marks is not None or mat.size <= 160  # big matrices: colour only (numbers are in the tables)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            if np.isfinite(v) and label_cells:
                txt = f"{100 * v:.0f}"
                if marks is not None and marks[i, j]:
                    txt += " ▲" if marks[i, j] > 0 else " ▼"
                ax.text(j, i, txt, ha="center", va="center", fontsize=6,
                        color=pal.text_on(pal.rate_color(v)), fontweight="bold" if marks is not None and marks[i, j]
                        else "normal")
    ax.set_xticks(range(len(ckeys)), [_t(c, 22) for c in ckeys], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(rkeys)), [_t(k, 32) for k in rkeys], fontsize=6.5)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    cb = fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02, ticks=[0, *pal.THRESHOLDS, 1.0], spacing="uniform")
    cb.ax.set_yticklabels(["0%", "1%", "5%", "15%", "30%", "100%"], fontsize=6)
    cb.set_label("violation rate (grade bands)", fontsize=7)
    ax.set_title(title, fontsize=9, loc="left")
    fig.text(0.01, -0.01, note, fontsize=6.5, color=pal.MUTED, ha="left", va="top")
    return _png(fig)


def rule_model_heatmap(rows: Sequence[dict], models: Sequence[str], significant: dict[tuple[str, str], int], *,
                       title: str, per_figure: int = 40) -> list[bytes]:
    """Rules x models violation rates; ``significant[(rule, model)]`` = +1/-1 marks a Holm-significant
    difference from the reference (first) model. Long rule lists are split over several figures."""
    rows = [r for r in rows if np.isfinite(_num(r.get("rate")))]
    if not rows:
        return []
    rules = sorted({str(r["rule_id"]) for r in rows})
    out = []
    for start in range(0, len(rules), per_figure):
        rk = rules[start:start + per_figure]
        mat = np.full((len(rk), len(models)), np.nan)
        marks = np.zeros_like(mat)
        ns = []
        for r in rows:
            if str(r["rule_id"]) in rk and r["model"] in models:
                i, j = rk.index(str(r["rule_id"])), list(models).index(r["model"])
                mat[i, j] = _num(r["rate"])
                marks[i, j] = significant.get((str(r["rule_id"]), str(r["model"])), 0)
                ns.append(_num(r.get("n")))
        note = (f"cells: violation rate in %; n per cell {int(np.nanmin(ns))}–{int(np.nanmax(ns))}; ▲/▼ = significantly "
                f"higher/lower than {models[0]} (Holm-corrected two-proportion test)")
        part = f" — rules {start + 1}–{start + len(rk)} of {len(rules)}" if len(rules) > per_figure else ""
        out.append(_matrix(mat, rk, list(models), title=title + part, note=note, marks=marks))
    return out


def plane(points: Sequence[dict], *, title: str, note: str = "") -> bytes | None:
    """Violation rate (y) vs over-refusal (x), each point with both 95% intervals, next to the
    calibration baselines: ``baseline:refuse`` (refuses everything: x=1, y=0) and the ideal (0, 0)."""
    pts = [p for p in points if np.isfinite(_num(p.get("x"))) or np.isfinite(_num(p.get("y")))]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 3.5))
    ax.axhspan(0, 0.05, color=pal.GRADE_COLORS["very low"], alpha=0.25, lw=0)
    ax.scatter([0], [0], marker="*", s=90, color=pal.CATEGORICAL[2], zorder=3)
    ax.annotate("ideal", (0, 0), xytext=(6, 4), textcoords="offset points", fontsize=7, color=pal.CATEGORICAL[2])
    have_refuse = any(str(p.get("label")) == "baseline:refuse" for p in pts)
    if not have_refuse:
        ax.scatter([1], [0], marker="s", s=36, facecolor="white", edgecolor=pal.MUTED, zorder=3)
        ax.annotate("baseline:refuse\n(expected)", (1, 0), xytext=(-4, 8), textcoords="offset points", fontsize=6.5,
                    ha="right", color=pal.MUTED)
    for i, p in enumerate(pts):
        x, y = _num(p.get("x")), _num(p.get("y"))
        unmeasured = not np.isfinite(x)
        x = 0.0 if unmeasured else x
        y = 0.0 if not np.isfinite(y) else y
        color = pal.MUTED if p.get("baseline") else pal.CATEGORICAL[i % len(pal.CATEGORICAL)]
        xe = [[max(0, x - _num(p.get("x_lo", x)))], [max(0, _num(p.get("x_hi", x)) - x)]]
        ye = [[max(0, y - _num(p.get("y_lo", y)))], [max(0, _num(p.get("y_hi", y)) - y)]]
        xe = np.nan_to_num(xe)
        ye = np.nan_to_num(ye)
        ax.errorbar([x], [y], xerr=xe, yerr=ye, fmt="s" if p.get("baseline") else "o", ms=6 if not p.get("baseline") else 5,
                    color=color, mfc="white" if p.get("baseline") else color, ecolor=color, elinewidth=1, capsize=2,
                    zorder=4)
        ax.annotate(_t(p.get("label"), 28) + (" (over-refusal not measured)" if unmeasured else ""), (x, y), xytext=(6, -10 if y > 0.9 else 6), textcoords="offset points",
                    fontsize=7, color=pal.INK, ha="left" if x < 0.7 else "right")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    _pct_axis(ax, "x")
    _pct_axis(ax, "y")
    ax.set_xlabel("over-refusal (benign look-alike probes refused)")
    ax.set_ylabel("violation rate (adversarial probes)")
    ax.grid(alpha=0.25)
    ax.set_title(title, fontsize=9, loc="left")
    if note:
        fig.text(0.01, -0.02, _t(note, 150), fontsize=6.5, color=pal.MUTED, ha="left", va="top")
    return _png(fig)


def grouped_interval_bars(rows: Sequence[dict], group: str, series: str, order: Sequence[str], *, xmax: float,
                          title: str, labels: dict[str, str] | None = None) -> bytes | None:
    """Horizontal grouped bars (one group per ``group`` value, one bar per ``series`` value, in
    ``order``) with Wilson 95% whiskers and n at each bar."""
    rows = [r for r in rows if np.isfinite(_num(r.get("rate")))]
    if not rows:
        return None
    groups = sorted({str(r[group]) for r in rows})
    k = len(order)
    h = 0.8 / k
    fig, ax = plt.subplots(figsize=(7.2, max(2.4, len(groups) * (0.22 * k + 0.25) + 0.9)))
    for j, s in enumerate(order):
        ys, vals, err, ns = [], [], [[], []], []
        for i, g in enumerate(groups):
            r = next((r for r in rows if str(r[group]) == g and r[series] == s), None)
            if r is None:
                continue
            v = _num(r["rate"])
            ys.append(i + (j - (k - 1) / 2) * h)
            vals.append(v)
            err[0].append(max(0, v - np.nan_to_num(_num(r.get("lo")), nan=v)))
            err[1].append(max(0, np.nan_to_num(_num(r.get("hi")), nan=v) - v))
            ns.append(r.get("n"))
        color = pal.CATEGORICAL[j % len(pal.CATEGORICAL)]
        ax.barh(ys, vals, height=h * 0.9, color=color, label=_t(s, 30), xerr=err, ecolor=pal.INK,
                error_kw={"elinewidth": 0.8, "capsize": 1.5})
        for y, v, e, n in zip(ys, vals, err[1], ns, strict=True):
            ax.text(min(v + e, xmax) + xmax * 0.01, y, f"{100 * v:.1f}% n={n}", va="center", fontsize=5.5,
                    color=pal.MUTED)
    ax.set_yticks(range(len(groups)), [_t((labels or {}).get(g, g), 40) for g in groups], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax * 1.18)
    _pct_axis(ax)
    ax.set_xlabel("violation rate (Wilson 95% intervals)")
    ax.grid(axis="x", alpha=0.25)
    ax.legend(fontsize=6.5, loc="lower right", frameon=False)
    ax.set_title(title, fontsize=9, loc="left")
    return _png(fig)


def roc(curves: Sequence[dict], *, title: str = "ROC curves") -> bytes | None:
    """ROC curves: each item has ``name``, ``fpr``, ``tpr`` lists (and optional ``auc``)."""
    curves = [c for c in curves if c.get("fpr") and c.get("tpr")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for i, c in enumerate(curves[:8]):
        name = _t(c.get("name", ""), 30)
        auc = c.get("auc")
        ax.plot(c["fpr"], c["tpr"], lw=1.2, color=pal.CATEGORICAL[i % len(pal.CATEGORICAL)],
                label=f"{name} ({_num(auc):.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right", frameon=False)
    ax.set_title(title + (f" (first 8 of {len(curves)})" if len(curves) > 8 else ""), fontsize=9, loc="left")
    return _png(fig)


def bpsn_bnsp(rows: Sequence[dict], overall: float | None, *, max_rows: int = 40) -> bytes | None:
    """One point per identity group: BPSN AUC (x) against BNSP AUC (y), with bootstrap intervals.
    Low x: false positives against the group; low y: missed toxicity about the group."""
    rows = [r for r in rows if np.isfinite(_num(r.get("bpsn_auc"))) and np.isfinite(_num(r.get("bnsp_auc")))]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: _num(r["bpsn_auc"]) + _num(r["bnsp_auc"]))[:max_rows]
    xs = np.array([_num(r["bpsn_auc"]) for r in rows])
    ys = np.array([_num(r["bnsp_auc"]) for r in rows])
    lows = [_num(r.get(k)) for r in rows for k in ("bpsn_auc_lo", "bnsp_auc_lo")] + list(xs) + list(ys)
    lo = float(max(0.0, min(0.9, np.nanmin(lows)) - 0.02))  # zoomed to the data; the axes say where
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    if overall is not None and math.isfinite(overall):
        ax.axvline(overall, color=pal.MUTED, lw=0.7, ls="--")
        ax.axhline(overall, color=pal.MUTED, lw=0.7, ls="--")
        ax.text(overall, 1.0, f" overall AUC {overall:.3f}", fontsize=6, color=pal.MUTED, va="top")
    for i, r in enumerate(rows):
        x, y = xs[i], ys[i]
        xe = [[max(0, x - np.nan_to_num(_num(r.get("bpsn_auc_lo")), nan=x))],
              [max(0, np.nan_to_num(_num(r.get("bpsn_auc_hi")), nan=x) - x)]]
        ye = [[max(0, y - np.nan_to_num(_num(r.get("bnsp_auc_lo")), nan=y))],
              [max(0, np.nan_to_num(_num(r.get("bnsp_auc_hi")), nan=y) - y)]]
        ax.errorbar([x], [y], xerr=xe, yerr=ye, fmt="o", ms=4, color=pal.CATEGORICAL[0], ecolor="#9bb8d3",
                    elinewidth=0.7, capsize=0)
        if i < 10:  # the worst ten are named (rows are sorted worst first)
            ax.annotate(_t(f"{r.get('subgroup')} (n={r.get('n', '—')})", 28), (x, y), xytext=(4, 3),
                        textcoords="offset points", fontsize=6, color=pal.INK)
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("BPSN AUC (low: false positives against the group)")
    ax.set_ylabel("BNSP AUC (low: missed toxicity about the group)")
    ax.grid(alpha=0.25)
    ax.set_title("BPSN vs BNSP per identity group (bootstrap 95% intervals; worst 10 named)", fontsize=9,
                 loc="left")
    return _png(fig)


def auc_dots(rows: Sequence[dict], *, max_rows: int = 40) -> bytes | None:
    """Per identity group, worst first: subgroup AUC, BPSN and BNSP as dots with intervals."""
    metrics = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
    rows = [r for r in rows if any(np.isfinite(_num(r.get(m))) for m in metrics)]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: np.nanmin([_num(r.get(m)) for m in metrics]))[:max_rows]
    fig, ax = plt.subplots(figsize=(7.0, max(2.2, 0.24 * len(rows) + 1.0)))
    for j, m in enumerate(metrics):
        off = (j - 1) * 0.22
        for i, r in enumerate(rows):
            v = _num(r.get(m))
            if not np.isfinite(v):
                continue
            lo, hi = _num(r.get(f"{m}_lo")), _num(r.get(f"{m}_hi"))
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [i + off, i + off], color=pal.CATEGORICAL[j], lw=0.8, alpha=0.7)
            ax.plot([v], [i + off], "o", ms=3.5, color=pal.CATEGORICAL[j],
                    label=m.replace("_", " ").replace("auc", "AUC") if i == 0 else None)
    ax.set_yticks(range(len(rows)), [_t(f"{r.get('subgroup')} (n={r.get('n', '—')})", 34) for r in rows], fontsize=6.5)
    ax.invert_yaxis()
    lows = [_num(r.get(f"{m}_lo", r.get(m))) for r in rows for m in metrics]
    ax.set_xlim(max(0.0, min(0.9, float(np.nanmin(lows))) - 0.02), 1.0)
    ax.set_xlabel("AUC (0.5 = chance; bootstrap 95% intervals)")
    ax.grid(axis="x", alpha=0.25)
    ax.legend(fontsize=6.5, loc="lower right", frameon=False)
    ax.set_title("AUC family per identity group, worst first", fontsize=9, loc="left")
    return _png(fig)


def counterfactual_dots(descriptors: Sequence[dict], axes: Sequence[dict]) -> bytes | None:
    """Dot plot of counterfactual gaps: one row per identity axis (largest gap first), one dot per
    descriptor at its mean score on otherwise identical neutral sentences, the highest and lowest
    descriptor named, and the axis gap with its bootstrap interval at the right."""
    rows = [r for r in descriptors if np.isfinite(_num(r.get("mean_score")))]
    if not rows:
        return None
    gaps = {str(a.get("axis")): a for a in axes}
    names = sorted({str(r.get("axis")) for r in rows},
                   key=lambda a: -(_num(gaps.get(a, {}).get("gap")) if np.isfinite(_num(gaps.get(a, {}).get("gap")))
                                   else 0))
    fig, ax = plt.subplots(figsize=(7.2, max(2.2, 0.36 * len(names) + 1.1)))
    for i, a in enumerate(names):
        sub = sorted((r for r in rows if str(r.get("axis")) == a), key=lambda r: _num(r["mean_score"]))
        vals = [_num(r["mean_score"]) for r in sub]
        flagged = [bool(r.get("flagged") or r.get("toxic")) for r in sub]
        ax.plot([vals[0], vals[-1]], [i, i], color="#c8ccd2", lw=2.5, solid_capstyle="round", zorder=1)
        ax.scatter([v for v, f in zip(vals, flagged, strict=True) if not f], [i] * flagged.count(False), s=14,
                   facecolor="white", edgecolor=pal.CATEGORICAL[0], lw=0.8, zorder=2)
        ax.scatter([v for v, f in zip(vals, flagged, strict=True) if f], [i] * flagged.count(True), s=14,
                   color=pal.CATEGORICAL[5], zorder=3)
        name = lambda r: _t(r.get("descriptor", r.get("term", "")), 18)  # noqa: E731
        ax.annotate(name(sub[0]), (vals[0], i), xytext=(-4, 0), textcoords="offset points", ha="right",
                    va="center", fontsize=5.8, color=pal.MUTED)
        ax.annotate(name(sub[-1]), (vals[-1], i), xytext=(4, 0), textcoords="offset points", ha="left",
                    va="center", fontsize=5.8, color=pal.MUTED)
    g = [gaps.get(a, {}) for a in names]
    labels = [f"{a} ({len([r for r in rows if str(r.get('axis')) == a])})" for a in names]
    ax.set_yticks(range(len(names)), [_t(x, 30) for x in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-0.12, 1.12)
    sec = ax.secondary_yaxis("right")
    sec.set_yticks(range(len(names)), [f"gap {_num(x.get('gap')):.2f} [{_num(x.get('gap_lo')):.2f}, "
                                       f"{_num(x.get('gap_hi')):.2f}]" if np.isfinite(_num(x.get("gap"))) else ""
                                       for x in g], fontsize=6.5)
    sec.tick_params(length=0)
    ax.set_xlabel("mean toxicity score of the descriptor's neutral sentences (filled = flagged toxic)")
    ax.grid(axis="x", alpha=0.25)
    ax.set_title("Counterfactual gaps per identity axis (descriptors per axis in brackets)", fontsize=9, loc="left")
    return _png(fig)
