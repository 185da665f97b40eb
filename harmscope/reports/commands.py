"""``harmscope report`` and ``harmscope runs list/show/export``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harmscope.errors import HarmscopeError
from harmscope.reports.formats import REPORT_FORMATS, parse_formats

console = Console()


class _FormatsOption(click.Option):
    """``--format``: its help lists the report-format registry when shown (not at import: listing a
    registry loads the plugins, which ``harmscope --help`` should not pay for)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"Comma-separated formats: {', '.join(REPORT_FORMATS.names())} (default: all)."
        return super().get_help_record(ctx)


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "formats", cls=_FormatsOption, default=None, help="Comma-separated formats.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Output folder.")
def report(paths: tuple[str, ...], formats: str | None, out_dir: str) -> None:
    """Render reports for a scored run, a comparison of runs, or a classifier audit.

    \b
    Example:
      harmscope report out/runs/smollm2 --format pdf,html --out out/reports
      harmscope report out/runs/smollm2 out/runs/refuse --out out/compare
      harmscope report out/audit --format pdf --out out/audit
    """
    from harmscope.reports.render import render_paths
    from harmscope.safeio import check_output_dir

    parse_formats(formats)  # a bad --format fails before any rendering
    check_output_dir(out_dir, "--out")
    written = render_paths(paths, out_dir, formats)
    for fmt_, path in written.items():
        console.print(f"[green]wrote[/green] {fmt_:<12} {path}")


@click.group("runs")
def runs() -> None:
    """List, inspect and export runs kept in the SQLite run store.

    \b
    Example:
      harmscope runs list out/runs
      harmscope runs show out/runs/smollm2
      harmscope runs export out/runs/smollm2 --format parquet --out out/export
    """


def _store_from(location: str):
    from harmscope.benchmarks.runs.store import STORE_FILENAME, Store, read_run_info

    p = Path(location)
    if p.is_dir() and (p / "run.json").is_file():
        p = read_run_info(p).store
    elif p.is_dir():
        p = p / STORE_FILENAME
    if not p.is_file():
        raise HarmscopeError(f"{location}: no run store found (looked for {p})")
    return Store(p)


@runs.command("list")
@click.argument("location", default="out/runs", type=click.Path())
@click.option("--format", "fmt_", type=click.Choice(["table", "json", "csv"]), default="table")
def runs_list(location: str, fmt_: str) -> None:
    """List the runs in a store (a workspace folder, a run folder or a .sqlite file).

    \b
    Example:
      harmscope runs list out/runs --format csv
    """
    df = _store_from(location).list_runs()
    if fmt_ == "json":
        click.echo(df.to_json(orient="records", indent=2))
    elif fmt_ == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    else:
        t = Table(title=f"{len(df)} runs")
        for c in df.columns:
            t.add_column(c)
        for row in df.itertuples(index=False):
            t.add_row(*[str(v) for v in row])
        console.print(t)


@runs.command("show")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def runs_show(run_dir: str) -> None:
    """Show a run's manifest and, when scored, its headline figures.

    \b
    Example:
      harmscope runs show out/runs/smollm2
    """
    from harmscope.benchmarks.runs.store import open_run

    store, run_id = open_run(run_dir)
    m = store.get_run(run_id)
    t = Table(title=f"run {run_id}", show_header=False)
    for k, v in m.model_dump().items():
        t.add_row(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    result = Path(run_dir) / "result.json"
    if result.is_file():
        from harmscope.reports._document import rate_text

        summary = json.loads(result.read_text(encoding="utf-8")).get("summary", {})
        t.add_row("pooled violation rate", rate_text(summary.get("pooled")))
        t.add_row("over-refusal", rate_text(summary.get("over_refusal")))
    console.print(t)


@runs.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt_", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Folder (default RUN_DIR/export).")
def runs_export(run_dir: str, fmt_: str, out_dir: str | None) -> None:
    """Export a run's probes, replies and judgments as Parquet or CSV tables.

    \b
    Example:
      harmscope runs export out/runs/smollm2 --format csv --out out/export
    """
    from harmscope.reports.export import export_run

    for name, path in export_run(run_dir, out_dir, fmt_).items():
        console.print(f"[green]wrote[/green] {name:<10} {path}")
