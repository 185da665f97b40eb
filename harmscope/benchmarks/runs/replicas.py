"""Replicated runs: the probes of one run spread over several endpoints serving the same model.

Probe batches are tasks on an execution engine (local threads or Dask workers); each task runs
the run engine (:func:`~harmscope.benchmarks.runs.engine.arun_probes`: concurrency, rate limit,
retries, timeouts) against a scratch store, and the client writes the replies to the one SQLite
store. The set-up (de-duplication, run id, counts, run directory) is the local run's
(:func:`~harmscope.benchmarks.runs.engine.plan_run` / :func:`~harmscope.benchmarks.runs.engine.start_run`),
so a replica run resumes (or is resumed by) a single-endpoint run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harmscope.benchmarks.runs.engine import _now, arun_probes, plan_run, start_run
from harmscope.benchmarks.runs.store import Store, write_run_dir
from harmscope.engines import resolve_engine
from harmscope.errors import HarmscopeError
from harmscope.models import load_model
from harmscope.models.base import GenParams
from harmscope.progress import progress_bar
from harmscope.types import ProbeSet, ProbeSetManifest, Response, RunManifest, content_hash

__all__ = ["replica_batch", "run_replicas"]

_ADAPTERS: dict[str, Any] = {}  # per process (worker): spec -> model adapter
_ADAPTERS_LOCK = threading.Lock()


def _adapter(spec: str) -> Any:
    with _ADAPTERS_LOCK:
        if spec not in _ADAPTERS:
            _ADAPTERS[spec] = load_model(spec)
        return _ADAPTERS[spec]


def replica_batch(spec: str, probes: list[Any], wanted: list[tuple[str, int]], params: dict[str, Any],
                  samples: int, concurrency: int, rate: float | None, timeout: float | None,
                  max_retries: int) -> list[Any]:
    """Task body: the replies of one endpoint to ``wanted`` (probe id, sample) pairs, in that order.

    Runs the run engine (``arun_probes``: concurrency, rate limit, retries with backoff, timeouts)
    against a scratch store; pairs not wanted are pre-marked as done there so they are skipped.
    """
    model = _adapter(spec)
    gp = GenParams(**params)
    ps = ProbeSet(manifest=ProbeSetManifest(catalog_version="replica-batch", generator_version="1", seed=0,
                                            set_hash=content_hash([p.id for p in probes])), probes=probes)
    tmp = tempfile.mkdtemp(prefix="harmscope-replica-")
    try:
        store = Store(Path(tmp) / "batch.sqlite")
        mh, ph = model.spec_hash, gp.hash()
        want = set(wanted)
        skip = [(Store.reply_key(mh, ph, p.id, s), Response(probe_id=p.id, sample=s, model=model.spec, text=""))
                for p in probes for s in range(samples) if (p.id, s) not in want]
        store.put_replies("-", skip)
        asyncio.run(arun_probes(ps, model, store, params=gp, concurrency=concurrency, rate=rate,
                                samples=samples, timeout=timeout, max_retries=max_retries, progress=False,
                                preflight=False))
        out = [store.get_reply(Store.reply_key(mh, ph, pid, s)) for pid, s in wanted]
        store.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_replicas(probe_set: Any, model_specs: Sequence[str], store: Any, *, params: Any = None,
                 per_endpoint_concurrency: int = 4, rate: float | None = None, samples: int = 1,
                 engine: str | Any | None = None, batch_size: int | None = None, timeout: float | None = 60.0,
                 max_retries: int = 5, run_dir: str | Path | None = None, progress: bool | None = None,
                 preflight: bool = True) -> RunManifest:
    """Send every probe (``samples`` times) to several replicas of ONE model; return the manifest.

    ``model_specs[0]`` is the model's identity: reply keys, the run id and ``Response.model`` are
    those of a plain ``harmscope run`` against it, so a replica run resumes (or is resumed by) a
    single-endpoint run. Probe batches are tasks bound to one endpoint each: every endpoint has
    one batch in flight at a time (``per_endpoint_concurrency`` requests inside it, at most
    ``rate`` requests/s per endpoint), and the next batch goes to whichever endpoint finishes
    first (least-loaded; the first round is round-robin). Workers run the run engine's retry
    logic; the client writes each batch's replies to ``store`` as it completes (the one SQLite
    store stays on the client). A lost worker's batch is redone elsewhere by Dask; replies
    already in the store are skipped.
    """
    specs = [str(s) for s in model_specs]
    if not specs:
        raise HarmscopeError("run_replicas: give at least one model endpoint")
    if len(set(specs)) != len(specs):
        raise HarmscopeError("run_replicas: the same endpoint is listed twice")
    if per_endpoint_concurrency < 1:
        raise HarmscopeError(f"per-endpoint concurrency must be >= 1, got {per_endpoint_concurrency}")
    if not isinstance(store, Store):
        store = Store(store)
    adapters = [load_model(s) for s in specs]
    primary = adapters[0]
    plan = plan_run(probe_set, primary, params, samples)
    plan.check_store(store)
    run_id, gp = plan.run_id, plan.params
    by_id = {p.id: p for p in plan.probes}
    eng, owned = resolve_engine(engine)
    manifest, counts = start_run(
        plan, store, primary, run_dir=run_dir, versions={"engine": "replicas-1"},
        engine={"kind": "replicas", "executor": getattr(eng, "spec", eng.name),
                "endpoints": [a.spec for a in adapters], "per_endpoint_concurrency": per_endpoint_concurrency,
                "rate": rate, "timeout": timeout, "max_retries": max_retries})
    todo = plan.todo

    try:
        if todo and preflight:
            async def check(a: Any) -> None:
                try:
                    await a.preflight()
                finally:
                    await a.aclose()

            for a in adapters:
                asyncio.run(check(a))
        size = batch_size or max(8, 4 * per_endpoint_concurrency)
        queue = deque(todo[i:i + size] for i in range(0, len(todo), size))
        per_endpoint: dict[str, int] = dict.fromkeys(specs, 0)
        inflight: dict[Any, tuple[str, list[tuple[str, int]]]] = {}
        gp_dict = gp.as_dict()

        def launch(spec: str) -> None:
            batch = queue.popleft()
            batch_probes = list({pid: by_id[pid] for pid, _ in batch}.values())
            fut = eng.submit(replica_batch, spec, batch_probes, batch, gp_dict, samples,
                             per_endpoint_concurrency, rate, timeout, max_retries)
            inflight[fut] = (spec, batch)

        bar = progress_bar(len(todo), f"run {run_id[:8]} x{len(specs)}", enabled=progress, fields={"failed": 0})
        try:
            for spec in specs:  # round-robin first round
                if queue:
                    launch(spec)
            while inflight:
                done, _ = eng.wait_first(list(inflight))
                for fut in done:
                    spec, batch = inflight.pop(fut)
                    try:
                        replies = fut.result()
                    except HarmscopeError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                        raise HarmscopeError(f"replica batch on {load_model(spec).spec} failed: "
                                             f"{type(exc).__name__}: {exc}") from None
                    items = []
                    for (pid, s), r in zip(batch, replies, strict=True):
                        r = r.model_copy(update={"model": primary.spec})
                        items.append((plan.keys[(pid, s)], r))
                        counts["answered" if r.ok else "failed"] += 1
                        counts["retries"] += max(0, r.attempts - 1)
                        counts["missing"] -= 1
                    store.put_replies(run_id, items)
                    per_endpoint[spec] += len(items)
                    bar.advance(len(items), failed=counts["failed"])
                    if queue:  # the endpoint that just finished is the least loaded
                        launch(spec)
        finally:
            bar.stop()
            interrupted = bool(inflight)
            for fut in inflight:
                fut.cancel()
            manifest.params["engine"]["replies_per_endpoint"] = {
                a.spec: per_endpoint[s] for a, s in zip(adapters, specs, strict=True)}
            manifest.counts = dict(counts)
            manifest.ended_at = None if interrupted else _now()
            store.save_run(manifest)
            if run_dir is not None:
                write_run_dir(run_dir, run_id, store.path, manifest)
    finally:
        if owned:
            eng.close()
    return manifest
