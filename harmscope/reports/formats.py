"""Report formats: one writer per output format, looked up only through :data:`REPORT_FORMATS`.

A format is a :class:`ReportFormat` subclass declaring ``name``, ``version``, ``description`` and
``suffix`` as class attributes, registered with a bare ``@REPORT_FORMATS.register``. It writes a
document report (a scored run, a comparison or an audit: :meth:`ReportFormat.write`) and, when
``agreement`` is true, a judge-agreement report (:meth:`ReportFormat.write_agreement`). Heavy
renderers (PDF: reportlab) are imported inside their writer. Registration order is the default
order of ``harmscope report --format``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from harmscope.errors import HarmscopeError
from harmscope.registry import Registry
from harmscope.reports import _agreement
from harmscope.reports._document import Document
from harmscope.reports._html import render_html
from harmscope.reports._markdown import render_markdown
from harmscope.reports._schema import validate
from harmscope.safeio import atomic_path, atomic_write_bytes, atomic_write_text

REPORT_FORMATS = Registry("report format", meta_attrs=("suffix", "agreement"), ordered=True)


@dataclass
class DocumentJob:
    """What a document report is written from: the document (built once, on first use: JSON alone
    never builds it) and the JSON payload with the schema it must satisfy."""

    make_doc: Callable[[], Document]
    payload: dict[str, Any]
    schema: str | None = None
    _doc: list[Document] = field(default_factory=list, repr=False)

    def document(self) -> Document:
        if not self._doc:
            self._doc.append(self.make_doc())
        return self._doc[0]


@dataclass
class AgreementJob:
    """A judge-agreement report (:func:`harmscope.classifiers.judges.agreement.compare_judges`);
    its plots are drawn once, on first use."""

    report: dict[str, Any]

    @cached_property
    def plots(self) -> dict[str, bytes | None]:
        return {"ROC curves and operating points": _agreement.roc_png(self.report),
                "Reliability diagram": _agreement.reliability_png(self.report)}


class ReportFormat:
    """Base class of a report format."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    suffix: ClassVar[str]
    agreement: ClassVar[bool] = False  #: can write judge-agreement reports

    def write(self, job: DocumentJob, path: Path) -> None:
        """Write a run, comparison or audit report to ``path`` (atomically)."""
        raise NotImplementedError

    def write_agreement(self, job: AgreementJob, path: Path) -> None:
        """Write a judge-agreement report to ``path`` (atomically)."""
        raise HarmscopeError(f"report format {self.name!r} cannot write judge-agreement reports")


@REPORT_FORMATS.register
class PdfFormat(ReportFormat):
    """PDF with bookmarks, contents and figures (reportlab)."""

    name = "pdf"
    suffix = "pdf"
    agreement = True

    def write(self, job: DocumentJob, path: Path) -> None:
        from harmscope.reports._pdf import render_pdf  # reportlab: imported only when a PDF is written

        with atomic_path(path) as tmp:  # a failed render keeps the previous PDF
            render_pdf(job.document(), tmp)

    def write_agreement(self, job: AgreementJob, path: Path) -> None:
        _agreement.render_pdf(job.report, path, job.plots)


@REPORT_FORMATS.register
class HtmlFormat(ReportFormat):
    """Self-contained HTML page (inline SVG charts and PNG figures, no scripts from outside)."""

    name = "html"
    suffix = "html"
    agreement = True

    def write(self, job: DocumentJob, path: Path) -> None:
        render_html(job.document(), path)

    def write_agreement(self, job: AgreementJob, path: Path) -> None:
        _agreement.render_html(job.report, path, job.plots)


@REPORT_FORMATS.register
class JsonFormat(ReportFormat):
    """The result itself as JSON, checked against its schema."""

    name = "json"
    suffix = "json"
    agreement = True

    def write(self, job: DocumentJob, path: Path) -> None:
        if job.schema:
            validate(job.schema, job.payload)
        atomic_write_text(path, json.dumps(job.payload, indent=2, ensure_ascii=False) + "\n")

    def write_agreement(self, job: AgreementJob, path: Path) -> None:
        atomic_write_bytes(path, (json.dumps(job.report, indent=2, default=float) + "\n").encode("utf-8"))


@REPORT_FORMATS.register
class MarkdownFormat(ReportFormat):
    """Markdown summary (tables cut to a few rows)."""

    name = "md"
    suffix = "md"

    def write(self, job: DocumentJob, path: Path) -> None:
        atomic_write_text(path, render_markdown(job.document()))


def parse_formats(formats: str | Sequence[str] | None, *, agreement: bool = False) -> list[str]:
    """Check a comma-separated string (or list) of format names against the registry; ``None``: all
    formats (that can write judge-agreement reports, when ``agreement``), in registration order."""
    usable = [e.name for e in REPORT_FORMATS if e.meta.get("agreement") or not agreement]
    if formats is None:
        return usable
    fl = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in fl if f not in usable]
    if bad or not fl:
        what = "judge-agreement report format" if agreement else "report format"
        raise HarmscopeError(f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(usable)}")
    return fl


def report_format(name: str) -> ReportFormat:
    """The writer of format ``name``."""
    return REPORT_FORMATS.get(name).obj()
