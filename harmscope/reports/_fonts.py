"""Fonts for PDF reports: any script renders, by per-character fallback across TrueType fonts.

The base font is DejaVu Sans as shipped inside matplotlib (PyPI; Latin, Greek, Cyrillic, Arabic,
Hebrew, many symbols), so the core always has a wide-coverage font without system libraries.
When the Debian packages ``fonts-noto-core`` (Devanagari, Arabic, symbols), ``fonts-wqy-zenhei``
(CJK) and ``fonts-symbola`` (emoji, monochrome) are installed (``make fonts``), they are added
as fallbacks. Characters no font covers are replaced by U+FFFD-style boxes only visually: the
text layer keeps the original character.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

_SYSTEM_FALLBACKS: list[tuple[str, str, int]] = [
    # (registered name, path, subfont index for .ttc)
    ("HSNotoDeva", "/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf", 0),
    ("HSNotoArab", "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf", 0),
    ("HSWqy", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("HSSymbola", "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", 0),
    ("HSNotoSym", "/usr/share/fonts/truetype/noto/NotoSansSymbols-Regular.ttf", 0),
    ("HSNotoSym2", "/usr/share/fonts/truetype/noto/NotoSansSymbols2-Regular.ttf", 0),
]


@dataclass(frozen=True)
class FontSet:
    regular: str
    bold: str
    mono: str
    fallbacks: tuple[tuple[str, frozenset[int]], ...]
    base_cmap: frozenset[int]
    sources: tuple[str, ...]


def _cmap(path: str, index: int = 0) -> frozenset[int]:
    from fontTools.ttLib import TTFont as FT

    font = FT(path, fontNumber=index, lazy=True)
    return frozenset(font.getBestCmap() or {})


def _matplotlib_font(name: str) -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


@functools.lru_cache(maxsize=1)
def fonts() -> FontSet:
    """Register the report fonts with reportlab once and return their names."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold, mono = (_matplotlib_font(n) for n in
                           ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"))
    pdfmetrics.registerFont(TTFont("HSSans", regular))
    pdfmetrics.registerFont(TTFont("HSSans-Bold", bold))
    pdfmetrics.registerFont(TTFont("HSMono", mono))
    from reportlab.lib.fonts import addMapping

    addMapping("HSSans", 0, 0, "HSSans")
    addMapping("HSSans", 1, 0, "HSSans-Bold")
    addMapping("HSSans", 0, 1, "HSSans")
    addMapping("HSSans", 1, 1, "HSSans-Bold")
    sources = [f"DejaVu Sans (matplotlib package data: {regular})"]
    fallbacks = []
    for name, path, idx in _SYSTEM_FALLBACKS:
        if not Path(path).exists():
            continue
        try:
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=idx))
            fallbacks.append((name, _cmap(path, idx)))
            sources.append(f"{Path(path).name} (Debian fonts package)")
        except Exception:  # noqa: BLE001 - a broken system font is skipped, never fatal
            continue
    return FontSet("HSSans", "HSSans-Bold", "HSMono", tuple(fallbacks), _cmap(regular), tuple(sources))


def markup(text: str, *, limit: int | None = None) -> str:
    """Escape ``text`` for a reportlab Paragraph and wrap runs of uncovered characters in
    fallback fonts. Model output is adversarial: it is always escaped, never interpreted."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + " […]"
    fs = fonts()
    out: list[str] = []
    run: list[str] = []
    run_font: str | None = None

    def flush() -> None:
        if not run:
            return
        chunk = escape("".join(run)).replace("\n", "<br/>")
        out.append(chunk if run_font is None else f'<font name="{run_font}">{chunk}</font>')
        run.clear()

    for ch in text:
        cp = ord(ch)
        if ch == "\n" or cp in fs.base_cmap:
            font = None
        else:
            font = next((name for name, cmap in fs.fallbacks if cp in cmap), None)
            if cp in (0x200B, 0x200C, 0x200D, 0xFEFF) or (cp < 32 and ch not in "\t"):
                ch = " " if cp < 32 else ch
        if font != run_font:
            flush()
            run_font = font
        run.append(ch)
    flush()
    return "".join(out)
