"""Render scored runs, run comparisons, classifier audits and judge-agreement reports in every registered
format (:data:`harmscope.reports.formats.REPORT_FORMATS`: PDF, HTML, JSON, Markdown; ``formats=None`` = all)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harmscope.benchmarks.runs.store import read_run_info
from harmscope.errors import HarmscopeError, InputError
from harmscope.reports._document import Document, audit_document, compare_document, run_document
from harmscope.reports.formats import AgreementJob, DocumentJob, parse_formats, report_format
from harmscope.types import SCHEMA_VERSION, AuditResult, RunResult


def load_result(path: str | Path) -> RunResult | AuditResult:
    """Read a scored run (``RUN_DIR/result.json``) or an audit (``AUDIT_DIR/audit.json``)."""
    p = Path(path)
    if p.is_dir():
        for name in ("result.json", "audit.json"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise InputError(f"{path}: no result.json (score the run first: harmscope score {path}) "
                             "and no audit.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{p}: cannot read JSON ({exc})") from None
    run_info = p.with_name("run.json")
    if p.name == "result.json" and run_info.is_file():  # a result scored from another run is stale
        current = read_run_info(p.parent).run_id  # a broken run.json is one error line naming it
        try:
            scored = str(data["manifest"]["run_id"])
        except (KeyError, TypeError):
            scored = ""
        if current and scored and current != scored:
            raise InputError(f"{p}: scored from run {scored}, but {run_info} is run {current}; "
                             f"re-score it: harmscope score {p.parent}")
    try:
        if "classifier" in data and "manifest" not in data:
            return AuditResult.model_validate(data)
        return RunResult.model_validate(data)
    except ValueError as exc:
        first = str(exc).splitlines()[:3]
        raise InputError(f"{p}: not a harmscope result ({' '.join(first)})") from None


def _write(make_doc: Callable[[], Document], payload: dict[str, Any], schema: str | None, out: Path, stem: str,
           formats: Sequence[str]) -> dict[str, Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarmscopeError(f"{out}: cannot create output folder ({exc.strerror})") from None
    job = DocumentJob(make_doc, payload, schema)  # the document is built once, and only if a format needs it
    written: dict[str, Path] = {}
    for f in formats:
        fmt = report_format(f)
        path = out / f"{stem}.{fmt.suffix}"
        fmt.write(job, path)
        written[f] = path
    return written


def render_agreement(report: dict[str, Any], out_dir: str | Path, formats: str | Sequence[str] | None = None,
                     stem: str = "judge-agreement") -> dict[str, Path]:
    """Write a judge-agreement report (``harmscope judges compare``) in ``formats`` (default: every
    format that can write one) under ``out_dir``; returns ``format -> path``."""
    job = AgreementJob(report)
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for f in parse_formats(formats, agreement=True):
        fmt = report_format(f)
        paths[f] = out / f"{stem}.{fmt.suffix}"
        fmt.write_agreement(job, paths[f])
    return paths


def render_run(result: RunResult, out_dir: str | Path, formats: str | Sequence[str] | None = None,
               *, stem: str = "report") -> dict[str, Path]:
    """Write the benchmark report of one scored run; returns ``format -> path``."""
    return _write(lambda: run_document(result), result.model_dump(mode="json"), "run-result",
                  Path(out_dir), stem, parse_formats(formats))


def render_comparison(results: Sequence[RunResult], out_dir: str | Path,
                      formats: str | Sequence[str] | None = None, *, stem: str = "comparison") -> dict[str, Path]:
    """Write a report comparing several scored runs side by side."""
    rows = compare_rows(results)
    payload = {"schema_version": SCHEMA_VERSION, "kind": "comparison",
               "runs": [r.model_dump(mode="json") for r in results], "differences": rows}
    return _write(lambda: compare_document(results, rows), payload, None, Path(out_dir), stem, parse_formats(formats))


def render_audit(result: AuditResult, out_dir: str | Path, formats: str | Sequence[str] | None = None,
                 *, stem: str = "audit-report") -> dict[str, Path]:
    """Write the report of a classifier bias audit."""
    return _write(lambda: audit_document(result), result.model_dump(mode="json"), "audit-result",
                  Path(out_dir), stem, parse_formats(formats))


def compare_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Per-rule differences of each run against the first (see ``benchmarks.scoring.compare_results``)."""
    from harmscope.benchmarks.scoring.compare import compare_results

    if len(results) < 2:
        return []
    return [{**r, "run_a": results[0].manifest.model, "run_b": r["model"], "rate_a": r["base_rate"],
             "rate_b": r["rate"], "diff_lo": r["lo"], "diff_hi": r["hi"]} for r in compare_results(list(results))]


def render_paths(paths: Sequence[str | Path], out_dir: str | Path,
                 formats: str | Sequence[str] | None = None) -> dict[str, Path]:
    """The ``harmscope report`` entry point: one run, several runs (comparison), or an audit."""
    if not paths:
        raise HarmscopeError("give at least one run or audit directory")
    loaded = [load_result(p) for p in paths]
    audits = [r for r in loaded if isinstance(r, AuditResult)]
    runs = [r for r in loaded if isinstance(r, RunResult)]
    written: dict[str, Path] = {}
    for i, a in enumerate(audits):
        for k, v in render_audit(a, out_dir, formats, stem="audit-report" if len(audits) == 1 else
                                 f"audit-report-{i + 1}").items():
            written[f"audit{i + 1}.{k}"] = v
    if len(runs) == 1:
        written.update(render_run(runs[0], out_dir, formats))
    elif runs:
        written.update(render_comparison(runs, out_dir, formats))
    return written
