"""PDF rendering with reportlab (pure Python, no system libraries).

Page 1 is the executive summary (the document's first section); page 2 the table of contents;
every section and sub-section is a PDF bookmark. Sections marked ``collapsed`` (appendices) are
moved to the end. Vector charts are reportlab drawings, so their numbers are in the text layer.
"""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageBreak,
    PageBreakIfNotEmpty,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from harmscope.reports import _charts, _plots
from harmscope.reports import _palette as pal
from harmscope.reports._document import Block, Document, fmt
from harmscope.reports._fonts import fonts, markup

MAX_TABLE_ROWS = 60
EXAMPLE_CHARS = 600
WIDTH = A4[0] - 3.6 * cm
HEAD_BG = colors.HexColor("#2b3640")


def _styles() -> dict[str, ParagraphStyle]:
    fs = fonts()
    base = getSampleStyleSheet()
    body = ParagraphStyle("hsBody", parent=base["BodyText"], fontName=fs.regular, fontSize=9, leading=12)
    return {
        "title": ParagraphStyle("hsTitle", parent=base["Title"], fontName=fs.bold, fontSize=17, leading=21,
                                alignment=TA_LEFT, spaceAfter=2),
        "meta": ParagraphStyle("hsMeta", parent=body, fontSize=7.5, leading=9.5, textColor=colors.HexColor(pal.MUTED)),
        "h1": ParagraphStyle("hsH1", parent=base["Heading1"], fontName=fs.bold, fontSize=15, leading=19,
                             spaceBefore=4, spaceAfter=6, keepWithNext=1, textColor=colors.HexColor(pal.INK)),
        "h2": ParagraphStyle("hsH2", parent=base["Heading2"], fontName=fs.bold, fontSize=11, leading=14,
                             spaceBefore=8, spaceAfter=4, keepWithNext=1, textColor=colors.HexColor(pal.INK)),
        "body": body,
        "sentence": ParagraphStyle("hsSentence", parent=body, fontSize=9.5, leading=13, leftIndent=10,
                                   bulletIndent=0, spaceAfter=4),
        "cell": ParagraphStyle("hsCell", parent=body, fontSize=7, leading=8.6),
        "head": ParagraphStyle("hsHead", parent=body, fontName=fs.bold, fontSize=7, leading=8.6,
                               textColor=colors.white),
        "klabel": ParagraphStyle("hsKLabel", parent=body, fontSize=7, leading=9, textColor=colors.HexColor(pal.MUTED)),
        "kvalue": ParagraphStyle("hsKValue", parent=body, fontName=fs.bold, fontSize=12, leading=15),
        "mono": ParagraphStyle("hsMono", parent=body, fontName=fs.regular, fontSize=7.5, leading=9.5,
                               backColor=colors.HexColor("#f4f4f4"), borderPadding=3),
        "warn": ParagraphStyle("hsWarn", parent=body, textColor=colors.HexColor("#8a1c1c"), fontName=fs.bold),
    }


def _table(block: Block, st) -> Table:
    cols = block.columns
    rows = block.items[:MAX_TABLE_ROWS]
    data = [[Paragraph(markup(label), st["head"]) for _, label in cols]]
    for r in rows:
        data.append([Paragraph(markup(fmt(r.get(k), k), limit=120), st["cell"]) for k, _ in cols])
    # columns share the width by how much text they hold (numbers stay narrow, text gets room)
    weights = [max(8, min(30, max([len(label)] + [len(fmt(r.get(k), k)) for r in rows]))) for k, label in cols]
    t = Table(data, colWidths=[WIDTH * w / sum(weights) for w in weights], repeatRows=1)
    t.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f4f7")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8ccd2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]))
    return t


def _image(png: bytes, max_w: float, max_h: float) -> Image:
    img = Image(io.BytesIO(png))
    w, h = img.imageWidth, img.imageHeight
    scale = min(max_w / w, max_h / h, 72 / _plots.DPI)  # never larger than drawn (fonts stay as designed)
    img.drawWidth, img.drawHeight = w * scale, h * scale
    return img


def _headline(blk: Block, st) -> Table:
    """Key figures as cards; a card with a colour is a grade badge."""
    items = blk.items
    if len(items) <= 3:
        cells = [[Paragraph(markup(str(k).upper()), st["klabel"]), Paragraph(markup(str(v)), st["kvalue"])]
                 for k, v, _ in items]
        widths = [WIDTH * w for w in ((0.26, 0.37, 0.37) if len(items) == 3 else [1 / len(items)] * len(items))]
        t = Table([cells], colWidths=widths)
        style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOX", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8ccd2")),
                 ("LINEAFTER", (0, 0), (-2, -1), 0.4, colors.HexColor("#c8ccd2")),
                 ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 8)]
        for i, (_, v, color) in enumerate(items):
            if color:
                style.append(("BACKGROUND", (i, 0), (i, 0), colors.HexColor(color)))
                fg = pal.text_on(color)
                cells[i] = [Paragraph(f'<font color="{fg}">{markup(str(items[i][0]).upper())}</font>', st["klabel"]),
                            Paragraph(f'<font color="{fg}">{markup(str(v))}</font>', st["kvalue"])]
        t = Table([cells], colWidths=widths)
        t.setStyle(TableStyle(style))
        return t
    data = []
    style = [("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#c8ccd2")), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
    for i, (k, v, color) in enumerate(items):
        data.append(["", Paragraph(markup(str(k)), st["body"]), Paragraph(markup(str(v)), st["body"])])
        if color:
            style.append(("BACKGROUND", (0, i), (0, i), colors.HexColor(color)))
    t = Table(data, colWidths=[0.5 * cm, WIDTH * 0.45, WIDTH * 0.55 - 0.5 * cm])
    t.setStyle(TableStyle(style))
    return t


def _chart(chart, width: float, st):
    fs = fonts()
    d = _charts.drawing(chart, width, fs.regular, fs.bold)
    if not chart.note:
        return d
    return KeepTogether([d, Paragraph(markup(chart.note), st["meta"])])


def _chart_row(blk: Block, st) -> Table:
    """Small charts side by side (two per row) with one caption."""
    fs = fonts()
    w = WIDTH / 2 - 4
    cells = [_charts.drawing(c, w, fs.regular, fs.bold) for c in blk.items]
    rows = [cells[i:i + 2] + [""] * (2 - len(cells[i:i + 2])) for i in range(0, len(cells), 2)]
    if blk.text:
        rows.append([Paragraph(markup(blk.text), st["meta"]), ""])
    t = Table(rows, colWidths=[WIDTH / 2, WIDTH / 2])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                           ("RIGHTPADDING", (0, 0), (-1, -1), 4)]))
    return t


def _kv(blk: Block, st) -> Table:
    data = [[Paragraph(markup(str(k)), st["cell"]), Paragraph(markup(str(v), limit=600), st["cell"])]
            for k, v in blk.items]
    t = Table(data, colWidths=[4.2 * cm, WIDTH - 4.2 * cm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8ccd2")),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f4f7")),
                           ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def _examples(blk: Block, st) -> list:
    out = []
    for ex in blk.items:
        scores = ex.get("judge_scores")
        if isinstance(scores, dict) and scores:
            judged = ", ".join(f"{k} {fmt(v)}" for k, v in scores.items())
        else:
            judged = f"{ex.get('judges') or ex.get('judge') or 'judges'}: {fmt(ex.get('score'))}"
        head = f"probe {ex.get('probe_id', '')} · transform {ex.get('transform', '—')} · scores: {judged}"
        out.append(KeepTogether([
            Paragraph(markup(head), st["cell"]),
            Paragraph(markup("Prompt: " + str(ex.get("prompt", "")), limit=EXAMPLE_CHARS), st["mono"]),
            Spacer(1, 3),
            Paragraph(markup("Reply: " + str(ex.get("reply", "")), limit=EXAMPLE_CHARS), st["mono"]),
            Spacer(1, 5),
        ]))
    return out


def _order(blocks: list[Block]) -> list[Block]:
    """Sections in order, appendices (collapsed sections) last."""
    main: list[Block] = []
    appendix: list[Block] = []
    cur = main
    for blk in blocks:
        if blk.kind == "heading" and blk.level == 1:
            cur = appendix if blk.collapsed else main
        cur.append(blk)
    return main + appendix


class _Doc(BaseDocTemplate):
    """Adds bookmarks (outline) for headings and fills in the page numbers of the contents page.

    The contents page is drawn before the section pages exist, so each page number on it is a PDF
    form (XObject) defined later, when its section lands on a page: one build pass, not two.
    """

    def afterFlowable(self, flowable) -> None:  # noqa: N802 - reportlab hook name
        level = getattr(flowable, "_hs_level", None)
        if level is None:
            return
        key = flowable._hs_key
        self.canv.bookmarkPage(key)
        self.canv.addOutlineEntry(flowable._hs_text[:120], key, level=level, closed=level == 0)
        toc = getattr(flowable, "_hs_toc", None)
        if toc is not None:
            fs = fonts()
            self.canv.beginForm(f"tocpage{toc}")
            self.canv.setFont(fs.regular, 10.5)
            self.canv.setFillColor(colors.HexColor(pal.INK))
            self.canv.drawRightString(WIDTH, 0, str(self.page))
            self.canv.endForm()


class _Contents(Flowable):
    """The table of contents: section titles linked to their bookmarks, page numbers as forms."""

    ROW = 19

    def __init__(self, entries: list[tuple[int, str, str]]) -> None:
        super().__init__()
        self.entries = entries  # (toc index, title, bookmark key)

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        return avail_w, self.ROW * len(self.entries)

    def draw(self) -> None:
        fs = fonts()
        c = self.canv
        for n, (idx, title, key) in enumerate(self.entries):
            y = self.ROW * (len(self.entries) - n - 1) + 4
            c.setFont(fs.regular, 10.5)
            c.setFillColor(colors.HexColor(pal.INK))
            text = title if len(title) <= 80 else title[:79] + "…"
            c.drawString(8, y, text)
            tw = c.stringWidth(text, fs.regular, 10.5)
            c.setFillColor(colors.HexColor("#b0b5bb"))
            c.drawString(14 + tw, y, " ." * max(0, int((WIDTH - tw - 60) / c.stringWidth(" .", fs.regular, 10.5))))
            c.saveState()
            c.translate(0, y)
            c.doForm(f"tocpage{idx}")
            c.restoreState()
            c.linkRect("", key, (0, y - 4, WIDTH, y + 12), relative=1, thickness=0)


def _heading(text: str, level: int, st, key: str, toc: int | None = None) -> Paragraph:
    p = Paragraph(markup(text), st["h1" if level == 1 else "h2"])
    p._hs_level = 0 if level == 1 else 1
    p._hs_text = text
    p._hs_key = key
    if toc is not None:
        p._hs_toc = toc
    return p


def render_pdf(doc: Document, path: Path) -> Path:
    """Write ``doc`` as a PDF at ``path``."""
    st = _styles()
    fs = fonts()
    meta = " · ".join(f"{k}: {v}" for k, v in doc.subtitle)
    story: list = [Paragraph(markup(doc.title), st["title"]), Paragraph(markup(meta), st["meta"]), Spacer(1, 6)]
    blocks = _order(doc.blocks)
    keys = iter(f"h{n}" for n in range(1, 10**9))
    sections = [b for b in blocks if b.kind == "heading" and b.level == 1]
    toc_of = {id(b): n for n, b in enumerate(sections)}
    entries = [(n, b.text, f"s{n}") for n, b in enumerate(sections)]
    seen_level1 = 0
    i = 0
    while i < len(blocks):
        blk = blocks[i]
        if blk.kind == "heading":
            level = blk.level if seen_level1 else 1
            if level == 1:
                seen_level1 += 1
                if seen_level1 == 2:  # after the executive page: the table of contents
                    story += [PageBreakIfNotEmpty(), _heading("Contents", 1, st, next(keys)), Spacer(1, 8),
                              _Contents(entries), PageBreak()]
                elif seen_level1 > 2:
                    story.append(CondPageBreak(9 * cm))
            if level == 2 and blk.anchor.startswith("rule-"):
                # a rule page: heading, key figures and small charts stay together
                group = [_heading(blk.text, level, st, next(keys))]
                while i + 1 < len(blocks) and blocks[i + 1].kind in ("kv", "charts", "chart"):
                    i += 1
                    nb = blocks[i]
                    group.append(_kv(nb, st) if nb.kind == "kv" else _chart_row(nb, st) if nb.kind == "charts"
                                 else _chart(nb.chart, WIDTH, st))
                    group.append(Spacer(1, 4))
                story.append(KeepTogether(group))
            elif level == 1 and id(blk) in toc_of:
                n = toc_of[id(blk)]
                story.append(_heading(blk.text, level, st, f"s{n}", toc=n))
            else:
                story.append(_heading(blk.text, level, st, next(keys)))
        elif blk.kind == "para":
            story.append(Paragraph(markup(blk.text), st["body"]))
        elif blk.kind == "warning":
            story.append(Paragraph(markup(blk.text), st["warn"]))
        elif blk.kind == "headline":
            story.append(_headline(blk, st))
        elif blk.kind == "sentences":
            story += [Paragraph(markup(s), st["sentence"], bulletText="•") for s in blk.items]
        elif blk.kind == "kv":
            story.append(_kv(blk, st))
        elif blk.kind == "table":
            story.append(_table(blk, st))
            if len(blk.items) > MAX_TABLE_ROWS:
                story.append(Paragraph(markup(f"… {len(blk.items) - MAX_TABLE_ROWS} more rows in the JSON/HTML "
                                              "report."), st["cell"]))
        elif blk.kind == "chart" and blk.chart is not None:
            story.append(_chart(blk.chart, WIDTH, st))
        elif blk.kind == "charts" and blk.items:
            story.append(_chart_row(blk, st))
        elif blk.kind == "image" and blk.png:
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if seen_level1 == 1 and nxt is not None and nxt.kind == "sentences":
                # executive page: the plane beside the three sentences
                img = _image(blk.png, WIDTH * 0.48, 8 * cm)
                sent = [Paragraph(markup(s), st["sentence"], bulletText="•") for s in nxt.items]
                t = Table([[img, sent]], colWidths=[WIDTH * 0.5, WIDTH * 0.5])
                t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
                story.append(t)
                i += 1
            else:
                story.append(KeepTogether([Paragraph(markup(blk.text), st["h2"]),
                                           _image(blk.png, WIDTH, (A4[1] - 6 * cm) * 0.75)]))
        elif blk.kind == "examples":
            story += _examples(blk, st)
        elif blk.kind == "pagebreak":
            story.append(PageBreak())
        story.append(Spacer(1, 5))
        i += 1

    def _footer(canvas, d) -> None:
        canvas.saveState()
        canvas.setFont(fs.regular, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(1.8 * cm, 1.0 * cm, doc.title[:110])
        canvas.drawRightString(A4[0] - 1.8 * cm, 1.0 * cm, f"page {d.page}")
        canvas.restoreState()

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pdf = _Doc(str(tmp), pagesize=A4, leftMargin=1.8 * cm, rightMargin=1.8 * cm, topMargin=1.4 * cm,
               bottomMargin=1.6 * cm, title=doc.title, author="harmscope", pageMode="UseOutlines")
    frame = Frame(pdf.leftMargin, pdf.bottomMargin, pdf.width, pdf.height, id="body")
    pdf.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_footer)])
    pdf.build(story)
    tmp.replace(path)
    return path
