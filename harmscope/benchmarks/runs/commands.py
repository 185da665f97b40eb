"""``harmscope run``: send a probe file to a model and store the replies (resumable)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from harmscope.benchmarks.probes.generate import read_probes
from harmscope.benchmarks.runs.engine import run_id_for, run_probes
from harmscope.benchmarks.runs.replicas import run_replicas
from harmscope.benchmarks.runs.store import Store, default_store_path, retire_stale_result
from harmscope.clitypes import FiniteFloat
from harmscope.engines import engine_option
from harmscope.errors import HarmscopeError
from harmscope.models import GenParams, load_model
from harmscope.safeio import check_output_dir
from harmscope.secrets import mask


class RunFailed(HarmscopeError):
    """Every reply of a run failed: nothing usable was stored (exit 1)."""

    exit_code = 1


SPEC_HELP = ("model spec: openai:MODEL@URL, hf:PATH, local:smollm2, replay:FILE, python:pkg.mod:fn, "
             "baseline:refuse|echo, or a YAML file")


@click.command("run")
@click.option("--model", "model_spec", required=True, help=SPEC_HELP)
@click.option("--probes", "probes_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="probe file (.jsonl or .parquet) from `harmscope probes generate`")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="run directory (run.json, manifest.json)")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1),
              help="requests in flight at once")
@click.option("--rate", default=None, type=FiniteFloat(positive=True), help="max requests per second")
@click.option("--tokens-per-min", default=None, type=FiniteFloat(positive=True),
              help="max tokens per minute (prompt estimate + max tokens)")
@click.option("--samples", default=None, type=click.IntRange(min=1),
              help="replies per probe [default: the probe file's 'samples' (distributional sets), else 1]")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.0, show_default=True, type=FiniteFloat(lo=0.0),
              help="0 = greedy decoding")
@click.option("--top-p", default=1.0, show_default=True, type=FiniteFloat(0.0, 1.0, positive=True))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--stop", multiple=True, help="stop string (repeatable)")
@click.option("--system", default=None, help="system prompt put before each probe")
@click.option("--timeout", default=60.0, show_default=True, type=FiniteFloat(positive=True),
              help="seconds per request (HTTP models)")
@click.option("--max-retries", default=5, show_default=True, type=click.IntRange(min=0))
@click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite store [default: $HARMSCOPE_STORE or RUN_DIR/../harmscope.sqlite]")
@click.option("--no-preflight", is_flag=True, help="skip the fail-fast test request")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option("--replica", "replicas", multiple=True, metavar="SPEC",
              help="another endpoint serving the same model (repeatable): probes are spread over "
                   "--model and the replicas on the execution engine (use with --engine dask)")
@engine_option
def run(model_spec: str, probes_path: Path, run_dir: Path, concurrency: int, rate: float | None,
        tokens_per_min: float | None, samples: int | None, max_tokens: int, temperature: float, top_p: float,
        seed: int, stop: tuple[str, ...], system: str | None, timeout: float, max_retries: int,
        store_path: Path | None, no_preflight: bool, quiet: bool, replicas: tuple[str, ...]) -> None:
    """Send every probe to a model and store the replies.

    Re-running the same command resumes the run: replies already stored are skipped and failed
    ones are tried again. Ctrl-C stops cleanly.

    \b
    Examples:
      harmscope run --model local:smollm2 --probes probes.jsonl --out runs/smol --max-tokens 64
      OPENAI_API_KEY=... harmscope run --model openai:gpt-4o-mini@https://api.openai.com/v1 \\
          --probes probes.jsonl --out runs/gpt --rate 5
    """
    check_output_dir(run_dir, "--out")
    probe_set = read_probes(probes_path)
    if not probe_set.probes:
        raise HarmscopeError(f"{probes_path}: the probe file holds no probes")
    if samples is None:
        wanted = probe_set.manifest.params.get("samples")
        samples = wanted if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 1 else 1
        if samples > 1 and temperature == 0:
            click.echo(f"note: {samples} samples per probe at temperature 0 give identical replies from a "
                       "deterministic model; pass --temperature 0.7 (or so) to sample", err=True)
    model = load_model(model_spec)
    try:
        params = GenParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, stop=tuple(stop),
                           seed=seed, system=system)
    except ValueError as exc:
        raise HarmscopeError(f"bad generation parameters: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
    store = Store(store_path if store_path is not None else default_store_path(run_dir))
    progress = not quiet and not os.environ.get("CI")
    stale = retire_stale_result(run_dir, run_id_for(probe_set.manifest.set_hash, model.spec_hash, params, samples))
    if stale is not None:
        click.echo(f"warning: {run_dir}/result.json was scored from another run; moved it to {stale} "
                   "(score this run with `harmscope score`)", err=True)
    if replicas:
        manifest = run_replicas(
            probe_set, [model_spec, *replicas], store, params=params, per_endpoint_concurrency=concurrency,
            rate=rate, samples=samples, timeout=timeout, max_retries=max_retries, run_dir=run_dir,
            progress=progress, preflight=not no_preflight,
        )
    else:
        manifest = run_probes(
            probe_set, model, store, params=params, concurrency=concurrency, rate=rate,
            tokens_per_min=tokens_per_min, samples=samples, timeout=timeout, max_retries=max_retries,
            run_dir=run_dir, progress=progress, preflight=not no_preflight,
        )
    c = manifest.counts
    click.echo(
        f"run {manifest.run_id}: {c.get('total', 0)} replies ({c.get('answered', 0)} answered, "
        f"{c.get('cached', 0)} already stored, {c.get('failed', 0)} failed) -> {run_dir} (store {store.path})"
    )
    if c.get("failed") and not c.get("answered") and not c.get("cached"):
        errors = [r.error for r in store.replies(manifest.run_id) if not r.ok and r.error]
        first = mask(errors[0])[:200] if errors else "unknown"
        raise RunFailed(f"run {manifest.run_id}: all {c['failed']} replies failed (first error: {first}); "
                        "fix the endpoint and run the same command again")
    if c.get("failed"):
        click.echo(f"{c['failed']} replies failed after retries: run the same command again to retry them",
                   err=True)
