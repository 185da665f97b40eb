"""A short Markdown summary for pasting into pull requests."""

from __future__ import annotations

from harmscope.reports._document import Document, fmt


def _cell(value: object, col: str = "", limit: int = 80) -> str:
    s = fmt(value, col).replace("|", "\\|").replace("\n", " ")
    for ch in "<>`*_[]":
        s = s.replace(ch, "\\" + ch)
    return s[:limit]


def render_markdown(doc: Document, *, max_rows: int = 12) -> str:
    """Headings, key figures and the first rows of each table; no examples (they are adversarial)."""
    lines = [f"## {_cell(doc.title)}", ""]
    lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in doc.subtitle]
    skip = False
    for b in doc.blocks:
        if b.kind == "heading" and b.level == 1:
            skip = b.text in ("Methodology", "Rules one by one") or (b.collapsed and not b.text.startswith("Appendix"))
            if lines and lines[-1] == "" and len(lines) > 1 and lines[-2].startswith("### "):
                del lines[-3:]  # the previous section had nothing to show in Markdown
            if not skip:
                lines += ["", f"### {_cell(b.text)}", ""]
        elif skip:
            continue
        elif b.kind == "headline":
            lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v, _ in b.items]
        elif b.kind == "sentences":
            lines += [""] + [f"- {_cell(x, limit=400)}" for x in b.items]
        elif b.kind == "kv":
            lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in b.items]
        elif b.kind == "table" and b.text in ("By risk area", "Grades per risk area", "Pooled violation and over-refusal",
                                               "Per-rule differences", "Groups treated worst", "By rule"):
            lines += ["", f"**{_cell(b.text)}**", ""]
            lines.append("| " + " | ".join(_cell(label) for _, label in b.columns) + " |")
            lines.append("|" + "---|" * len(b.columns))
            for r in b.items[:max_rows]:
                lines.append("| " + " | ".join(_cell(r.get(k), k) for k, _ in b.columns) + " |")
            if len(b.items) > max_rows:
                lines.append(f"\n_{len(b.items) - max_rows} more rows in the full report._")
    if len(lines) > 2 and lines[-1] == "" and lines[-2].startswith("### "):
        del lines[-3:]
    return "\n".join(lines) + "\n"
