"""Reports: PDF, HTML, JSON and Markdown for scored runs, comparisons and classifier audits."""

from harmscope.reports.render import (
    FORMATS,
    compare_rows,
    load_result,
    render_audit,
    render_comparison,
    render_paths,
    render_run,
)

__all__ = ["FORMATS", "compare_rows", "load_result", "render_audit", "render_comparison", "render_paths",
           "render_run"]
