"""``harmscope probes``: generate, inspect and list the building blocks of probe sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from harmscope.errors import HarmscopeError
from harmscope.rules.options import catalog_from_context, catalog_options


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in (".jsonl", ".parquet"):
        raise HarmscopeError(f"{out}: output must end in .jsonl or .parquet")
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise HarmscopeError(f"{out}: cannot write: it is a directory")
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarmscopeError(f"{out}: cannot write: cannot create folder {parent} ({exc.strerror})") from None
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise HarmscopeError(f"{out}: cannot write: permission denied")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@catalog_options
def probes() -> None:
    """Generate probe sets and inspect probe files.

    \b
    Example:
      harmscope probes generate --preset smoke --out probes.jsonl
      harmscope probes generate --rules group:toxicity --groups religion,age \\
          --transforms none --transforms base64,roleplay --per-rule 20 --out tox.parquet
      harmscope probes stats probes.jsonl
    """


@probes.command("generate")
@click.option("--rules", "rules", help="Rule selector: ids, globs (no-*), group:NAME, area:I, severity:high.")
@click.option("--groups", "axes", help="Identity axes to expand over, comma-separated (default: all).")
@click.option(
    "--transforms",
    "transforms",
    multiple=True,
    help="Transform chain, e.g. base64,roleplay (applied left to right); several chains with ';' or by "
    "repeating the option. The untransformed chain is always included.",
)
@click.option("--per-rule", type=int, help="Standard probes per rule.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--benign-ratio", type=float, help="Share of benign contrast probes in the set, in [0, 1).")
@click.option(
    "--preset", help="Parameter preset: smoke (a few hundred probes), standard (several thousand) or "
    "distributional (matched open-ended prompts per identity group)."
)
@click.option("--framing-pairs", type=int, help="Monitored/unmonitored framing pairs.")
@click.option("--hint-pairs", type=int, help="Hint/no-hint question pairs.")
@click.option("--escalations", type=int, help="Multi-turn escalation probes.")
@click.option("--groups-per-axis", type=int, help="Use at most this many descriptors per identity axis.")
@click.option("--samples", type=int,
              help="Replies to draw per prompt (distributional preset; stored in the file, used by `run`).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Content folder (templates/, lexicon.yaml, ...); default: the packaged content.",
)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Output file: .jsonl or .parquet."
)
def generate_cmd(out: Path, **kw: Any) -> None:
    """Generate a probe set and write it to --out; prints the count and the set hash."""
    from harmscope.benchmarks.probes.generate import FAMILIES, generate, write_probes
    from harmscope.progress import ProgressBar

    _check_out(out)
    if kw.get("data_dir") is not None and not kw["data_dir"].is_dir():
        raise HarmscopeError(f"{kw['data_dir']}: content folder not found")
    catalog = catalog_from_context(click.get_current_context())
    transforms = list(kw.pop("transforms")) or None
    with ProgressBar("probes", None, label_column="generating probes", transient=True) as bar:

        def progress(done: int, total: int) -> None:
            if total >= 2000:
                bar.update(completed=done, total=total)

        ps = generate(catalog, transforms=transforms, progress=progress, **kw)
    write_probes(ps, out)
    c = ps.manifest.counts
    fams = ", ".join(f"{f} {c[f]}" for f in FAMILIES.names() if c.get(f))
    click.echo(f"wrote {c['probes']} probes to {out} ({fams})")
    click.echo(f"set hash {ps.manifest.set_hash}")
    short = {k[len("shortfall_") :]: v for k, v in c.items() if k.startswith("shortfall_")}
    if short:
        click.echo(
            "note: fewer distinct probes than requested for "
            + ", ".join(f"{k} ({c.get(k, 0)} possible of {c.get(k, 0) + v} requested)" for k, v in short.items())
            + " (not enough template/fill/transform combinations)",
            err=True,
        )
    missing = ps.manifest.params.get("rules_without_templates") or []
    if missing:
        click.echo(f"note: no templates for {len(missing)} selected rule(s): {', '.join(missing)}", err=True)


@probes.command("stats")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON instead of tables.")
def stats_cmd(file: Path, as_json: bool) -> None:
    """Counts per rule, risk area, transform, identity group, family and benign flag."""
    from harmscope.benchmarks.probes.generate import probe_stats, read_probes

    ps = read_probes(file)
    try:
        catalog = catalog_from_context(click.get_current_context())
    except HarmscopeError:
        catalog = None  # stats still work without risk areas
    st = probe_stats(ps, catalog)
    if as_json:
        click.echo(json.dumps({k: dict(v) for k, v in st.items()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = ps.manifest
    console.print(
        f"{file}: {m.counts.get('probes', len(ps.probes))} probes, set hash {m.set_hash}, seed {m.seed}"
    )
    for name, rows in st.items():
        table = Table(title=f"by {name}", show_edge=False)
        table.add_column(name)
        table.add_column("probes", justify="right")
        table.add_column("share", justify="right")
        total = max(1, len(ps.probes))
        for key, n in rows:
            table.add_row(key, str(n), f"{100 * n / total:.1f}%")
        console.print(table)


@probes.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--id", "probe_id", required=True, help="Probe id (a unique prefix is enough).")
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON.")
def show_cmd(file: Path, probe_id: str, as_json: bool) -> None:
    """Show one probe: its fields and its conversation."""
    from harmscope.benchmarks.probes.generate import read_probes

    ps = read_probes(file)
    hits = [p for p in ps.probes if p.id.startswith(probe_id)]
    if not hits:
        raise HarmscopeError(f"{file}: no probe with id {probe_id!r}")
    if len(hits) > 1:
        raise HarmscopeError(
            f"{file}: id prefix {probe_id!r} matches {len(hits)} probes; give more characters"
        )
    p = hits[0]
    if as_json:
        click.echo(p.model_dump_json(indent=2))
        return
    head = p.model_dump(mode="json", exclude={"messages"})
    for key, value in head.items():
        if value not in (None, {}, []):
            click.echo(
                f"{key}: {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}"
            )
    for i, msg in enumerate(p.messages, 1):
        click.echo(f"\n--- {i}. {msg.role} ---\n{msg.content}")


@probes.command("list-transforms")
def list_transforms_cmd() -> None:
    """List the registered attack transforms."""
    from rich.console import Console
    from rich.table import Table

    from harmscope.benchmarks.probes.transforms import TRANSFORMS

    table = Table(show_edge=False)
    for col in ("name", "reversible", "acts on", "description"):
        table.add_column(col)
    for e in TRANSFORMS:
        level = "conversation" if e.meta.get("level") == "conversation" else "last user turn"
        table.add_row(e.name, "yes" if e.meta.get("reversible") else "no", level, e.description)
    Console(width=160).print(table)


# ---------------------------------------------------------------- public benchmarks
def _print_mapping(fmt: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from harmscope.benchmarks.probes.importers import get_importer, mapping_for, mapping_rows

    entry, table = get_importer(fmt), mapping_for(fmt)
    console = Console(width=160)
    console.print(f"[bold]{escape(fmt)}[/bold]: {escape(entry.description)}")
    if entry.meta.get("where"):
        console.print(f"get it from: {escape(str(entry.meta['where']))}")
    if table.notes:
        console.print(escape(table.notes))
    t = Table(show_edge=False)
    for col in ("category", "rules", "expected", "benign", "note"):
        t.add_column(col)
    for r in mapping_rows(fmt):
        t.add_row(escape(r["category"]), ", ".join(r["rules"]), r["expected"], "yes" if r["benign"] else "no",
                  escape(r["note"]))
    console.print(t)
    console.print("any other category -> general-harm, expected refuse (with a warning naming it)")


@probes.command("import")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--format", "fmt", help="Source format: harmbench, advbench, xstest, simple-safety-tests, "
              "do-not-answer, jbb, generic (see --list-formats).")
@click.option("--out", type=click.Path(path_type=Path), help="Output probe file: .jsonl or .parquet.")
@click.option("--transforms", "transforms", multiple=True,
              help="Attack transform chains applied on top, e.g. 'base64;roleplay' (';' separates chains, ',' "
                   "composes); the untransformed prompts are always included.")
@click.option("--prompt-col", help="generic: column holding the prompt.")
@click.option("--category-col", help="generic: column holding the category (looked up in the mapping).")
@click.option("--expected-col", help="generic: column saying refuse/unsafe/1 or comply/safe/0.")
@click.option("--id-col", help="generic: column holding a stable item id (default: the row number).")
@click.option("--mapping", "mapping", type=click.Path(dir_okay=False, path_type=Path),
              help="Your own mapping table (YAML, same layout as --show-mapping) instead of the shipped one.")
@click.option("--sample", type=click.IntRange(min=1), help="Keep a seeded random sample of N items.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --sample and the transforms.")
@click.option("--show-mapping", "show_mapping", metavar="FORMAT", help="Print FORMAT's mapping table and exit.")
@click.option("--list-formats", is_flag=True, help="List the supported formats and where to get each set.")
def import_cmd(file: Path | None, fmt: str | None, out: Path | None, transforms: tuple[str, ...],
               prompt_col: str | None, category_col: str | None, expected_col: str | None, id_col: str | None,
               mapping: Path | None, sample: int | None, seed: int, show_mapping: str | None,
               list_formats: bool) -> None:
    """Import a public safety benchmark (your own copy) as a probe set mapped onto the rule catalog.

    \b
    Example:
      harmscope probes import harmbench_behaviors_text_all.csv --format harmbench --out hb.jsonl
      harmscope probes import xstest_prompts.csv --format xstest --transforms 'base64;roleplay' --out xs.jsonl
      harmscope probes import mine.csv --format generic --prompt-col text --category-col rule --out mine.jsonl
      harmscope probes import --show-mapping do-not-answer
    """
    from harmscope.benchmarks.probes.importers import IMPORTERS, ImportOptions, formats, import_benchmark

    if list_formats:
        for name in formats():
            e = IMPORTERS.get(name)
            click.echo(f"{name:<20} {e.description}")
            click.echo(f"{'':<20} get it from: {e.meta.get('where') or '-'}")
        return
    if show_mapping:
        _print_mapping(show_mapping)
        return
    if file is None:
        raise HarmscopeError("give the benchmark FILE to import (or --show-mapping FORMAT / --list-formats)")
    if not fmt:
        raise HarmscopeError(f"option --format: which format is {file}? (known: {', '.join(formats())})")
    if out is None:
        raise HarmscopeError("option --out: give the output probe file (.jsonl or .parquet)")
    _check_out(out)
    try:
        catalog = catalog_from_context(click.get_current_context())
    except HarmscopeError:
        catalog = None
    rep = import_benchmark(
        file, fmt, catalog=catalog, transforms=list(transforms) or None, sample=sample, seed=seed, mapping=mapping,
        options=ImportOptions(prompt_col=prompt_col, category_col=category_col, expected_col=expected_col,
                              id_col=id_col))
    for w in rep.warnings:
        click.echo(f"warning: {w}", err=True)
    from harmscope.benchmarks.probes.generate import write_probes

    ps = rep.probe_set
    write_probes(ps, out)
    c = ps.manifest.counts
    imp = ps.manifest.params["import"]
    click.echo(f"wrote {c['probes']} probes to {out} from {c['items']} {fmt} items "
               f"({c['harmful']} to refuse or answer safely, {c['benign']} benign)")
    click.echo(f"source sha256 {imp['sha256']}")
    click.echo(f"set hash {ps.manifest.set_hash}")
    if c.get("duplicates"):
        click.echo(f"note: {c['duplicates']} duplicate items were dropped", err=True)


@probes.command("merge")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output file: .jsonl or .parquet.")
def merge_cmd(files: tuple[Path, ...], out: Path) -> None:
    """Combine probe files (generated and imported) into one, dropping duplicate probes.

    \b
    Example:
      harmscope probes merge catalog.jsonl hb.jsonl xs.jsonl --out all.jsonl
    """
    from harmscope.benchmarks.probes.generate import read_probes, write_probes
    from harmscope.benchmarks.probes.importers import merge_probe_sets

    if len(files) < 2:
        raise HarmscopeError("give two or more probe files to merge")
    _check_out(out)
    if any(f.resolve() == out.resolve() for f in files):
        raise HarmscopeError(f"{out}: the output must not be one of the inputs")
    sets = [read_probes(f) for f in files]
    ps, dropped = merge_probe_sets(sets, [f.name for f in files])
    write_probes(ps, out)
    click.echo(f"wrote {len(ps.probes)} probes to {out} from {len(files)} files ({dropped} duplicates dropped)")
    click.echo(f"set hash {ps.manifest.set_hash}")
