"""Reports: PDF, HTML, JSON and Markdown for scored runs, comparisons and classifier audits."""

from harmscope.reports.formats import REPORT_FORMATS
from harmscope.reports.render import (
    compare_rows,
    load_result,
    render_agreement,
    render_audit,
    render_comparison,
    render_paths,
    render_run,
)

__all__ = ["REPORT_FORMATS", "compare_rows", "load_result", "render_agreement", "render_audit", "render_comparison",
           "render_paths", "render_run"]
