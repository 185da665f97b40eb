"""``harmscope rules``: list, show, validate, check coverage of and export the rule catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harmscope.errors import HarmscopeError
from harmscope.rules import taxonomy
from harmscope.rules.loader import Catalog, load_catalog
from harmscope.rules.options import catalog_from_context, catalog_options, catalog_settings


def _catalog(ctx: click.Context) -> Catalog:
    """The catalog chosen by the group options (built-in plus any --catalog files)."""
    return catalog_from_context(ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@catalog_options
def rules() -> None:
    """Browse, validate and export the harm rule catalog.

    \b
    Example:
      harmscope rules list --area I
      harmscope rules --catalog my_rules.yaml show my-rule
    """


def _filter(cat: Catalog, area: str | None, group: str | None, severity: str | None, select: str | None):
    chosen = cat.select(select)
    for extra in (f"area:{area}" if area else None, f"group:{group}" if group else None,
                  f"severity:{severity}" if severity else None):
        if extra:
            keep = {r.id for r in cat.select(extra)}
            chosen = [r for r in chosen if r.id in keep]
    return chosen


@rules.command("list")
@click.option("--area", help="Risk area id, e.g. I or IV.")
@click.option("--group", help="Rule group, e.g. toxicity.")
@click.option("--severity", help="Severity (low, medium, high, critical); '>=high' or 'high+' for at least.")
@click.option("--select", "select", help="Any rule selector, e.g. 'no-*,-no-body' or 'risk:I.3'.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_context
def list_cmd(ctx: click.Context, area: str | None, group: str | None, severity: str | None,
             select: str | None, fmt: str) -> None:
    """List rules, optionally filtered.

    \b
    Example:
      harmscope rules list --area I --severity '>=high'
      harmscope rules list --group privacy --format json
    """
    cat = _catalog(ctx)
    chosen = _filter(cat, area, group, severity, select)
    if fmt == "json":
        click.echo(json.dumps([_summary(cat, r) for r in chosen], indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        frame = cat.to_frame()
        frame = frame[frame["id"].isin([r.id for r in chosen])]
        click.echo(frame.drop(columns=["text", "source"]).to_csv(index=False), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"harmscope rules ({len(chosen)} of {len(cat)}, catalog {cat.version})")
    for col in ("id", "group", "severity", "risks", "name"):
        table.add_column(col, overflow="fold")
    for r in chosen:
        table.add_row(r.id, r.group, r.severity, ", ".join(r.risks), r.name)
    Console(soft_wrap=False).print(table)


def _summary(cat: Catalog, r) -> dict:
    return {
        "id": r.id,
        "name": r.name,
        "group": r.group,
        "purpose": r.purpose,
        "severity": r.severity,
        "risks": r.risks,
        "areas": cat.areas_of(r),
        "judges": r.judges,
    }


@rules.command("show")
@click.argument("rule_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True)
@click.pass_context
def show_cmd(ctx: click.Context, rule_id: str, fmt: str) -> None:
    """Show one rule in full, with its risks and example replies.

    \b
    Example:
      harmscope rules show insults
      harmscope rules show no-medical-advice --format json
    """
    cat = _catalog(ctx)
    r = cat.get(rule_id)
    data = r.model_dump(mode="json")
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if fmt == "yaml":
        import yaml

        data.pop("source", None)
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), nl=False)
        return
    c = r.characteristics
    file, line = cat.locations.get(r.id, (r.source or "?", 0))
    out = [
        f"{r.id}: {r.name}",
        f"  group: {r.group}   purpose: {r.purpose}   severity: {r.severity}",
        f"  defined at: {file}:{line}",
        "",
        "  " + r.text,
        "",
        "  risks:",
        *(f"    {rid}  {taxonomy.risk(rid).name}" for rid in r.risks),
        f"  characteristics: harm_type={c.harm_type} scope={c.scope} recipients={','.join(c.recipients)} "
        f"context_dependence={c.context_dependence}" + (f" axes={','.join(c.axes)}" if c.axes else ""),
        f"  judges: {', '.join(r.judges)}",
    ]
    if r.exceptions:
        out += ["  exceptions:", *(f"    - {e}" for e in r.exceptions)]
    for kind in ("violating", "compliant"):
        texts = getattr(r.examples, kind)
        out += [f"  {kind} examples ({len(texts)}):"]
        out += [f"    - {' '.join(t.split())}" for t in texts]
    click.echo("\n".join(out))


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--with-builtin", is_flag=True, help="Also load the built-in catalog, to catch id collisions.")
@click.pass_context
def validate_cmd(ctx: click.Context, paths: tuple[Path, ...], with_builtin: bool) -> None:
    """Check catalog files; prints one 'FILE:LINE: field ...' line per problem (exit 2) or 'ok' (exit 0).

    \b
    Example:
      harmscope rules validate my_rules.yaml
      harmscope rules validate --with-builtin rules_dir/
    """
    override = catalog_settings(ctx)["override"]
    cat = load_catalog(list(paths), builtin=with_builtin, override=override)
    click.echo(f"ok: {len(cat)} rules valid (catalog {cat.version})")


@rules.command("coverage")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the risks x rules matrix (0/1) here.")
@click.pass_context
def coverage_cmd(ctx: click.Context, csv_path: Path | None) -> None:
    """Show which taxonomy risks the catalog covers; exit 1 if a measurable risk has no rule.

    \b
    Example:
      harmscope rules coverage
      harmscope rules --catalog extra.yaml coverage --csv coverage.csv
    """
    cat = _catalog(ctx)
    cov = cat.coverage()
    for area in taxonomy.AREAS:
        click.echo(f"{area.id}  {area.name}")
        for row in cov[cov["area"] == area.id].itertuples():
            if row.measurable:
                mark = (f"{row.n_rules} rule" + ("s" if row.n_rules != 1 else "")) if row.n_rules else "UNCOVERED"
                detail = row.rules.replace(";", ", ")
            else:
                mark, detail = "n/a", f"not measurable: {row.why_not}"
            click.echo(f"  {row.risk:<6} {mark:<10} {row.name}" + (f"\n{'':20}{detail}" if detail else ""))
    if csv_path is not None:
        import pandas as pd

        matrix = pd.DataFrame(
            [[int(risk.id in r.risks) for r in cat] for risk in taxonomy.RISKS],
            index=pd.Index([risk.id for risk in taxonomy.RISKS], name="risk"),
            columns=[r.id for r in cat],
        )
        matrix.insert(0, "measurable", [int(risk.measurable) for risk in taxonomy.RISKS])
        try:
            matrix.to_csv(csv_path)
        except OSError as exc:
            raise HarmscopeError(f"{csv_path}: cannot write: {exc.strerror or exc}") from None
        click.echo(f"wrote {csv_path}")
    uncovered = cov[cov["measurable"] & (cov["n_rules"] == 0)]["risk"].tolist()
    n_meas = int(cov["measurable"].sum())
    if uncovered:
        click.echo(f"UNCOVERED measurable risks: {', '.join(uncovered)} ({n_meas - len(uncovered)}/{n_meas} covered)")
        sys.exit(1)
    click.echo(f"all {n_meas} measurable risks covered by {len(cat)} rules")


@rules.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--out", "out", type=click.Path(path_type=Path), help="Output file (default: stdout).")
@click.option("--examples", is_flag=True, help="Export the example replies (rule_id, kind, label, text) instead.")
@click.option("--select", "select", help="Rule selector, e.g. 'group:toxicity'.")
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, out: Path | None, examples: bool, select: str | None) -> None:
    """Export the catalog (or its example replies) as JSON or CSV.

    \b
    Example:
      harmscope rules export --format json --out catalog.json
      harmscope rules export --examples --format csv --out examples.csv
    """
    cat = _catalog(ctx)
    chosen = cat.select(select)
    if examples:
        frame = cat.examples_frame(select)
        text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", force_ascii=False, indent=2)
    elif fmt == "json":
        payload = {
            "catalog_version": cat.version,
            "rules": [r.model_dump(mode="json", exclude={"source"}) for r in chosen],
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False)
    else:
        frame = cat.to_frame()
        text = frame[frame["id"].isin([r.id for r in chosen])].drop(columns=["source"]).to_csv(index=False)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise HarmscopeError(f"{out}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(chosen) if not examples else len(cat.examples_frame(select))} rows to {out}", err=True)

