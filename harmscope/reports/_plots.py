"""Report plots as PNG bytes (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 130


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


def interval_bars(rows: Sequence[dict], label: str, value: str = "rate", *, title: str,
                  xlabel: str = "violation rate", lo: str = "lo", hi: str = "hi",
                  max_rows: int = 40) -> bytes | None:
    """Horizontal bars with interval whiskers, one per row (largest first)."""
    rows = [r for r in rows if np.isfinite(_num(r.get(value)))]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: _num(r[value]), reverse=True)[:max_rows][::-1]
    vals = np.array([_num(r[value]) for r in rows])
    los = np.array([_num(r.get(lo, r[value])) for r in rows])
    his = np.array([_num(r.get(hi, r[value])) for r in rows])
    err = np.vstack([np.clip(vals - np.nan_to_num(los, nan=0), 0, None),
                     np.clip(np.nan_to_num(his, nan=0) - vals, 0, None)])
    fig, ax = plt.subplots(figsize=(7.0, max(2.0, 0.22 * len(rows) + 0.8)))
    ax.barh(range(len(rows)), vals, xerr=err, color="#c0504d", ecolor="#333", capsize=2, height=0.7)
    labels = [str(r.get(label, ""))[:38] for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(1e-3, float(np.nanmax(np.r_[his, vals]))) * 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def heatmap(rows: Sequence[dict], row_key: str, col_key: str, value: str = "rate", *,
            title: str, max_rows: int = 40) -> bytes | None:
    """Matrix of ``value`` over (row_key, col_key) cells; missing cells are blank."""
    rows = [r for r in rows if np.isfinite(_num(r.get(value)))]
    if not rows:
        return None
    rkeys = sorted({str(r[row_key]) for r in rows})[:max_rows]
    ckeys = sorted({str(r[col_key]) for r in rows})
    mat = np.full((len(rkeys), len(ckeys)), np.nan)
    for r in rows:
        if str(r[row_key]) in rkeys:
            mat[rkeys.index(str(r[row_key])), ckeys.index(str(r[col_key]))] = _num(r[value])
    fig, ax = plt.subplots(figsize=(min(10, 1.2 + 0.45 * len(ckeys)), max(2.0, 0.22 * len(rkeys) + 1.2)))
    im = ax.imshow(np.ma.masked_invalid(mat), aspect="auto", cmap="Reds", vmin=0, vmax=1)
    ax.set_xticks(range(len(ckeys)), [c[:18] for c in ckeys], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rkeys)), [k[:30] for k in rkeys], fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def scatter(points: Sequence[dict], *, x: str, y: str, label: str, title: str,
            xlabel: str, ylabel: str) -> bytes | None:
    """One labelled point per model (e.g. over-refusal vs violation rate)."""
    pts = [p for p in points if np.isfinite(_num(p.get(x))) and np.isfinite(_num(p.get(y)))]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for p in pts:
        ax.scatter(_num(p[x]), _num(p[y]), s=40)
        ax.annotate(str(p[label])[:30], (_num(p[x]), _num(p[y])), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def roc(curves: Sequence[dict], *, title: str = "ROC curves") -> bytes | None:
    """ROC curves: each item has ``name``, ``fpr``, ``tpr`` lists (and optional ``auc``)."""
    curves = [c for c in curves if c.get("fpr") and c.get("tpr")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for c in curves[:12]:
        name = str(c.get("name", ""))[:30]
        auc = c.get("auc")
        ax.plot(c["fpr"], c["tpr"], lw=1.2, label=f"{name} ({_num(auc):.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def grouped_bars(rows: Sequence[dict], label: str, metrics: Sequence[str], *, title: str,
                 max_rows: int = 30) -> bytes | None:
    """Grouped vertical bars, one group per row, one bar per metric (e.g. AUC, BPSN, BNSP)."""
    rows = [r for r in rows if any(np.isfinite(_num(r.get(m))) for m in metrics)][:max_rows]
    if not rows:
        return None
    n, k = len(rows), len(metrics)
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(min(11, 1.5 + 0.45 * n), 3.6))
    for j, m in enumerate(metrics):
        vals = [_num(r.get(m)) for r in rows]
        ax.bar(np.arange(n) + j * width - 0.4 + width / 2, np.nan_to_num(vals, nan=0), width, label=m)
    ax.set_xticks(range(n), [str(r.get(label))[:20] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1.0)
    ax.axhline(0.5, color="#999", lw=0.6, ls="--")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def strip(rows: Sequence[dict], group: str, value: str, *, title: str, xlabel: str) -> bytes | None:
    """Per-group spread of values (e.g. descriptor scores per identity axis)."""
    rows = [r for r in rows if np.isfinite(_num(r.get(value)))]
    if not rows:
        return None
    groups = sorted({str(r[group]) for r in rows})
    fig, ax = plt.subplots(figsize=(7.0, max(2.0, 0.3 * len(groups) + 0.8)))
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups):
        vals = [_num(r[value]) for r in rows if str(r[group]) == g]
        ax.scatter(vals, i + rng.uniform(-0.2, 0.2, len(vals)), s=8, alpha=0.7)
    ax.set_yticks(range(len(groups)), [g[:30] for g in groups], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
