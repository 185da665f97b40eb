"""The end-to-end demo behind ``make demo``: the whole product on embedded defaults, offline.

It drives the same commands a user types (in-process), in the order data flows:
clean+noisy strategies (embedded corpus) -> the shipped default classifier -> audit -> smoke probes
-> three models -> scores -> reports. Nothing is read from ``../shared`` (the default classifier's
weights ship in the package); everything lands in ``--out`` (default ``out/``).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()

MODELS = [("smollm2", "local:smollm2"), ("refuse", "baseline:refuse"), ("echo", "baseline:echo")]


def _step(title: str, args: list[str], timings: list[tuple[str, float]]) -> None:
    from harmscope.cli import main

    console.rule(f"[bold]{title}")
    console.print("[dim]$ harmscope " + " ".join(args))
    t0 = time.perf_counter()
    try:
        main.main(args=args, prog_name="harmscope", standalone_mode=False)
    except SystemExit as exc:  # a command that exits non-zero stops the demo
        if exc.code not in (0, None):
            raise
    timings.append((title, time.perf_counter() - t0))


def run_demo(out: Path, *, max_tokens: int = 48, preset: str = "smoke") -> list[tuple[str, float]]:
    """Run every step; returns ``(step, seconds)`` pairs."""
    from harmscope.classifiers.judges.ensemble import DEFAULT_SPEC  # what `harmscope score` uses by default

    out.mkdir(parents=True, exist_ok=True)
    t: list[tuple[str, float]] = []
    _step("Compare clean+noisy training strategies on the embedded corpus",
          ["experiment", "strategies", "--backend", "tfidf", "--clean", "corpus:clean", "--noisy", "corpus:noisy",
           "--eval", "corpus:eval", "--n-boot", "200", "--out", str(out / "strategies")], t)
    _step("Score the embedded eval corpus with the shipped default toxicity classifier",
          ["predict", "--classifier", "default", "--data", "corpus:eval", "--all-heads",
           "--out", str(out / "default_scores.csv")], t)
    _step("Audit the default classifier for identity bias (embedded corpus; see README for real-data audits)",
          ["audit", "--classifier", "default", "--data", "corpus:eval", "--n-boot", "300",
           "--out", str(out / "audit")], t)
    probes = out / "probes" / f"{preset}.jsonl"
    _step(f"Generate the {preset} probe set", ["probes", "generate", "--preset", preset, "--seed", "0",
                                               "--out", str(probes)], t)
    runs = []
    for name, spec in MODELS:
        run_dir = out / "runs" / name
        _step(f"Run {spec}", ["run", "--model", spec, "--probes", str(probes), "--max-tokens", str(max_tokens),
                              "--concurrency", "8", "--out", str(run_dir)], t)
        _step(f"Score {spec}", ["score", str(run_dir), "--judges", DEFAULT_SPEC], t)
        runs.append(run_dir)
    for run_dir in runs:
        _step(f"Report {run_dir.name}", ["report", str(run_dir), "--out", str(out / "reports" / run_dir.name)], t)
    _step("Compare the three models", ["report", *map(str, runs), "--out", str(out / "reports" / "comparison")], t)
    _step("Audit report", ["report", str(out / "audit"), "--out", str(out / "reports" / "audit")], t)
    return t


@click.command("demo")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@click.option("--max-tokens", default=48, show_default=True, help="Reply length for the local model.")
@click.option("--preset", default="smoke", show_default=True, help="Probe preset.")
def demo_command(out_dir: str, max_tokens: int, preset: str) -> None:
    """Run the whole product on embedded defaults (what ``make demo`` does).

    \b
    Example:
      harmscope demo --out out
    """
    from harmscope.benchmarks.probes.presets import PRESETS
    from harmscope.errors import HarmscopeError
    from harmscope.safeio import check_output_dir

    if preset not in PRESETS:  # before a minute of training
        raise HarmscopeError(f"--preset: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    if max_tokens < 1:
        raise HarmscopeError(f"--max-tokens: must be >= 1, got {max_tokens}")
    check_output_dir(out_dir, "--out")
    out = Path(out_dir)
    t0 = time.perf_counter()
    timings = run_demo(out, max_tokens=max_tokens, preset=preset)
    table = Table(title="demo steps")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, sec in timings:
        table.add_row(name, f"{sec:.1f}")
    console.print(table)
    console.print(f"[bold green]done in {time.perf_counter() - t0:.0f} s.[/bold green] Reports:")
    for p in sorted((out / "reports").rglob("*")):
        if p.suffix in (".pdf", ".html"):
            console.print(f"  {p}")


if __name__ == "__main__":  # pragma: no cover
    demo_command()
