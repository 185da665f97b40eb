"""One visual language for every report: a colour-blind-safe palette for grades and rates.

Grades and rates share one sequential scale (sampled from matplotlib's perceptually uniform,
colour-vision-deficiency-safe ``inferno``, light = few violations, dark = many). A rate's
position on the scale is piecewise linear between the absolute grade thresholds, so a rate and
the grade it would earn always get the same colour, in the heat maps, the bars and the badges.
Models and metrics that are categories (not amounts) use the Okabe-Ito palette.
"""

from __future__ import annotations

import math

import numpy as np

GRADES = ("very low", "low", "moderate", "high", "very high")
THRESHOLDS = (0.01, 0.05, 0.15, 0.30)  # upper bounds of grades 1-4 (same as benchmarks.scoring)
# the scale: positions 0..1 -> colour; grade i sits at the middle of its band
_STOPS = ("#fcffa4", "#f8c932", "#f98e09", "#e35933", "#bc3754", "#8a226a", "#57106e", "#1f0c48")
GRADE_COLORS = {"very low": "#f6e57a", "low": "#f9b624", "moderate": "#ec6b26", "high": "#b5367a",
                "very high": "#3d0d5c"}
GRADE_TEXT = {"very low": "#1d232b", "low": "#1d232b", "moderate": "#1d232b", "high": "#ffffff",
              "very high": "#ffffff"}
NO_DATA = "#d5d9de"
# Okabe & Ito (2008) categorical colours for models / metrics
CATEGORICAL = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
INK = "#1d232b"
MUTED = "#6b7580"
ACCENT = "#0072B2"

_X = (0.0, *THRESHOLDS, 1.0)
_Y = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def position(rate: float) -> float:
    """Where ``rate`` sits on the colour scale (0..1), piecewise linear between grade thresholds."""
    return float(np.interp(min(max(rate, 0.0), 1.0), _X, _Y))


def inverse_position(pos: float) -> float:
    return float(np.interp(min(max(pos, 0.0), 1.0), _Y, _X))


def _hex(c: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(255 * max(0.0, min(1.0, v))):02x}" for v in c)


def _rgb(h: str) -> tuple[float, float, float]:
    h = h.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def scale_color(pos: float) -> str:
    """Colour at position ``pos`` (0..1) of the shared scale."""
    pos = min(max(pos, 0.0), 1.0) * (len(_STOPS) - 1)
    i = min(int(math.floor(pos)), len(_STOPS) - 2)
    t = pos - i
    a, b = _rgb(_STOPS[i]), _rgb(_STOPS[i + 1])
    return _hex(tuple(x + (y - x) * t for x, y in zip(a, b, strict=True)))  # type: ignore[arg-type]


def rate_color(rate: float | None) -> str:
    """The colour of a violation rate (grey when undefined)."""
    if rate is None or not math.isfinite(rate):
        return NO_DATA
    return GRADE_COLORS[grade_of(rate)]


def text_on(fill: str) -> str:
    """Black or white text, whichever reads better on ``fill``."""
    r, g, b = _rgb(fill)
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def grade_of(rate: float) -> str:
    """The absolute grade of a rate (same thresholds as ``benchmarks.scoring.grade``)."""
    for g, t in zip(GRADES, THRESHOLDS, strict=False):
        if rate <= t:
            return g
    return GRADES[-1]


def grade_color(grade: str | None) -> str:
    return GRADE_COLORS.get(str(grade or "").lower(), NO_DATA)


def cmap():
    """A matplotlib colormap + norm pair for rates 0..1 on the shared scale."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cm = ListedColormap([GRADE_COLORS[g] for g in GRADES], name="harmscope").with_extremes(bad=NO_DATA)
    return cm, BoundaryNorm([0.0, *THRESHOLDS, 1.0], cm.N)


def nice_max(values: list[float], floor: float = 0.05) -> float:
    """A shared axis end for rates: the smallest of 5%, 10%, 25%, 50%, 100% above every value."""
    top = max([v for v in values if v is not None and math.isfinite(v)] + [floor])
    for m in (0.05, 0.10, 0.25, 0.50, 1.0):
        if top <= m + 1e-12:
            return m
    return 1.0
