"""Small vector charts drawn natively: SVG for HTML, reportlab drawings for PDF.

Interval bar charts (one bar per area, transform, identity group, rule...) are the most common
figure in the reports; drawing them as vectors keeps them sharp, fast (no matplotlib figure per
chart: a 72-rule run has ~150 of them) and searchable (their numbers are in the PDF text layer).
Both back ends draw the same list of primitives laid out once. Every label is escaped by the
SVG back end and drawn as a plain string (never parsed) by reportlab.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from harmscope.reports import _palette as pal


@dataclass
class Bar:
    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    k: int | None = None
    color: str | None = None  # default: the colour of the rate's grade
    badge: str = ""  # text shown at the right (e.g. the grade)


@dataclass
class Chart:
    """Horizontal bars with 95% interval whiskers on a shared rate axis ``0..xmax``."""

    title: str
    bars: list[Bar]
    xmax: float = 1.0
    note: str = ""  # n / interval statement: the renderers show it as the chart's caption
    percent: bool = True  # False: values are scores (e.g. AUCs) shown with 3 decimals
    xmin: float = 0.0
    label_width: float = 150.0
    width: float = 500.0
    row: float = 15.0
    ops: list[tuple] = field(default_factory=list, repr=False)


def _num(x: float | None, c: Chart, digits: int = 1) -> str:
    if c.percent:
        return pct(x, digits)
    return "—" if x is None or not math.isfinite(x) else f"{x:.3f}"


def pct(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:.{digits}f}%"


def _clip(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def layout(c: Chart) -> tuple[float, float, list[tuple]]:
    """Primitives in a top-down coordinate system: (width, height, ops)."""
    ops: list[tuple] = []
    lw, w, row = c.label_width, c.width, c.row
    compact = w < 360  # small multiples: the value column shows rate and n, the whisker the interval
    if compact:
        lw = min(lw, 0.3 * w)
    value_w = 62.0 if compact else 150.0
    plot_w = w - lw - value_w
    top = 18.0 if c.title else 4.0
    if c.title:
        ops.append(("text", 0, 11, _clip(c.title, 90), 9, "start", pal.INK, True))
    h_plot = row * len(c.bars)
    x0 = lw
    span = max(c.xmax - c.xmin, 1e-9)

    def sx(v: float) -> float:
        return x0 + plot_w * (min(max(v, c.xmin), c.xmax) - c.xmin) / span

    # grid and ticks
    ticks = [c.xmin + span * i / 4 for i in range(5)]
    for t in ticks:
        x = sx(t)
        ops.append(("line", x, top, x, top + h_plot, "#e1e4e8", 0.6))
        label = pct(t, 0 if c.xmax >= 0.1 else 1) if c.percent else f"{t:.2f}".rstrip("0").rstrip(".")
        ops.append(("text", x, top + h_plot + 10, label, 7, "middle", pal.MUTED, False))
    for i, b in enumerate(c.bars):
        y = top + i * row
        ops.append(("text", lw - 6, y + row * 0.68, _clip(b.label, int(lw / 4.6)), 7.5, "end", pal.INK, False))
        if b.value is None or not math.isfinite(b.value):
            ops.append(("text", x0 + 4, y + row * 0.68, "no data", 7, "start", pal.MUTED, False))
            continue
        fill = b.color or pal.rate_color(b.value)
        bw = sx(b.value) - x0
        ops.append(("rect", x0, y + 2.5, max(bw, 0.8), row - 5, fill, "#8a9099" if fill == pal.GRADE_COLORS["very low"] else None))
        if b.lo is not None and b.hi is not None and math.isfinite(b.lo) and math.isfinite(b.hi):
            xl, xh = sx(b.lo), sx(b.hi)
            ym = y + row / 2
            ops.append(("line", xl, ym, xh, ym, pal.INK, 0.9))
            ops.append(("line", xl, ym - 3, xl, ym + 3, pal.INK, 0.9))
            if b.hi <= c.xmax:
                ops.append(("line", xh, ym - 3, xh, ym + 3, pal.INK, 0.9))
        txt = _num(b.value, c) if compact else f"{_num(b.value, c)} [{_num(b.lo, c)}, {_num(b.hi, c)}]"
        if b.n is not None:
            txt += f" n={b.n}"
        ops.append(("text", x0 + plot_w + 6, y + row * 0.68, txt, 7, "start", pal.INK, False))
        if b.badge:
            ops.append(("text", w, y + row * 0.68, b.badge, 7, "end", pal.MUTED, True))
    ops.append(("line", x0, top, x0, top + h_plot, pal.INK, 0.8))
    return w, top + h_plot + 14, ops


def svg(c: Chart, clean: Callable[[str], str] = str) -> str:
    """The chart as an inline SVG element (all text passed through ``clean``, then escaped)."""
    w, h, ops = layout(c)
    out = [f'<svg class="chart" viewBox="0 0 {w:.0f} {h:.0f}" '
           f'width="{w:.0f}" height="{h:.0f}" role="img" aria-label={quoteattr(clean(_clip(c.title, 120)))}>']
    for op in ops:
        if op[0] == "rect":
            _, x, y, rw, rh, fill, stroke = op
            st = f' stroke="{stroke}" stroke-width="0.5"' if stroke else ""
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{rw:.1f}" height="{rh:.1f}" fill="{fill}"{st}/>')
        elif op[0] == "line":
            _, x1, y1, x2, y2, color, lw = op
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
                       f'stroke-width="{lw}"/>')
        else:
            _, x, y, s, size, anchor, color, bold = op
            fw = ' font-weight="600"' if bold else ""
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                       f'fill="{color}"{fw}>{escape(clean(s))}</text>')
    out.append("</svg>")
    return "".join(out)


def drawing(c: Chart, width: float, regular: str = "Helvetica", bold: str = "Helvetica-Bold"):
    """The chart as a reportlab Drawing ``width`` points wide."""
    from reportlab.graphics.shapes import Drawing, Line, Rect, String
    from reportlab.lib import colors

    c = Chart(**{**c.__dict__, "width": width})
    w, h, ops = layout(c)
    d = Drawing(w, h)
    for op in ops:
        if op[0] == "rect":
            _, x, y, rw, rh, fill, stroke = op
            d.add(Rect(x, h - y - rh, rw, rh, fillColor=colors.HexColor(fill),
                       strokeColor=colors.HexColor(stroke) if stroke else None, strokeWidth=0.4 if stroke else 0))
        elif op[0] == "line":
            _, x1, y1, x2, y2, color, lw = op
            d.add(Line(x1, h - y1, x2, h - y2, strokeColor=colors.HexColor(color), strokeWidth=lw))
        else:
            _, x, y, s, size, anchor, color, is_bold = op
            d.add(String(x, h - y, s, fontName=bold if is_bold else regular, fontSize=size,
                         fillColor=colors.HexColor(color), textAnchor=anchor))
    return d
