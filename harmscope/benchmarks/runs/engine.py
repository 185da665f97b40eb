"""The async run engine: send every probe to a model, store every reply as it arrives.

- Concurrency: ``concurrency`` worker tasks; optional token buckets for requests/s (``rate``)
  and tokens/min (``tokens_per_min``, estimated from prompt length + ``max_tokens``, refunded
  with the real usage when the server reports it).
- Faults: a per-request timeout, and retries with exponential backoff and jitter on 429/5xx,
  timeouts, dropped connections and malformed replies, honouring ``Retry-After``; after
  ``max_retries`` retries the reply is stored as a failure (``Response.error``), never a crash.
- Resume: the run id is a hash of (probe set hash, model spec hash, generation params, samples),
  and replies are keyed by (model, params, probe, sample), so re-running the same command skips
  every reply already stored (failed ones are tried again). Ctrl-C stops cleanly: finished
  replies are written in their own transactions and the manifest says what is missing.
"""

from __future__ import annotations

import asyncio
import json
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harmscope import secrets
from harmscope.benchmarks.probes.transforms import TRANSFORMS
from harmscope.benchmarks.runs.store import Store, StoreError, default_store_path, run_lock, write_run_dir
from harmscope.errors import HarmscopeError
from harmscope.models.base import GenParams, ModelAdapter, ModelCallError
from harmscope.progress import progress_bar
from harmscope.safeio import atomic_write_text, note_saved
from harmscope.types import ComponentSpec, Probe, ProbeSet, Response, RunManifest, content_hash

ENGINE_VERSION = "1"


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity`` saved up."""

    def __init__(self, rate: float, capacity: float | None = None):
        if rate <= 0:
            raise HarmscopeError(f"rate limit must be > 0, got {rate}")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate / 10))
        self.tokens = self.capacity
        self.t = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now

    async def acquire(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are available and take them (``n`` > capacity waits for a full bucket)."""
        async with self._lock:
            need = min(n, self.capacity)
            while True:
                self._refill()
                if self.tokens >= need:
                    self.tokens -= n
                    return
                await asyncio.sleep((need - self.tokens) / self.rate)

    def refund(self, n: float) -> None:
        self._refill()
        self.tokens = min(self.capacity, self.tokens + n)


@dataclass
class _Job:
    probe: Probe
    sample: int
    key: str


def run_id_for(probe_set_hash: str, model_hash: str, params: GenParams, samples: int) -> str:
    """The deterministic run id: the same command resumes the same run."""
    return content_hash({"probe_set": probe_set_hash, "model": model_hash, "params": params.as_dict(),
                         "samples": samples})


@dataclass
class RunPlan:
    """One run's set-up, shared by local (:func:`arun_probes`) and replicated runs
    (:func:`harmscope.benchmarks.runs.replicas.run_replicas`): the de-duplicated probes, the run
    id, the reply key of every (probe, sample), and which replies the store already holds."""

    probes: list[Probe]
    probe_set_hash: str
    run_id: str
    params: GenParams
    samples: int
    keys: dict[tuple[str, int], str]  # (probe id, sample) -> reply key, probe then sample order
    cached: list[str] = field(default_factory=list)
    todo: list[tuple[str, int]] = field(default_factory=list)

    def check_store(self, store: Store) -> None:
        """Split the replies into already stored (``cached``) and to do (``todo``)."""
        status = store.reply_status(self.keys.values())
        self.cached = [k for k in self.keys.values() if status.get(k)]
        self.todo = [ps for ps, k in self.keys.items() if not status.get(k)]

    def counts(self) -> dict[str, int]:
        """The counts of a run that has not sent anything yet."""
        return {"total": len(self.keys), "answered": 0, "failed": 0, "cached": len(self.cached),
                "missing": len(self.todo), "retries": 0}


def plan_run(probe_set: ProbeSet, model: ModelAdapter, params: GenParams | dict[str, Any] | None,
             samples: int) -> RunPlan:
    """The set-up of a run of ``probe_set`` on ``model`` (the identity; replicas reuse it)."""
    if params is None:
        params = GenParams()
    elif isinstance(params, dict):
        params = GenParams(**params)
    if samples < 1:
        raise HarmscopeError(f"samples must be >= 1, got {samples}")
    seen: set[str] = set()
    probes = [p for p in probe_set.probes if not (p.id in seen or seen.add(p.id))]
    ps_hash = probe_set.manifest.set_hash
    model_hash, p_hash = model.spec_hash, params.hash()
    keys = {(p.id, s): Store.reply_key(model_hash, p_hash, p.id, s) for p in probes for s in range(samples)}
    return RunPlan(probes=probes, probe_set_hash=ps_hash, run_id=run_id_for(ps_hash, model_hash, params, samples),
                   params=params, samples=samples, keys=keys)


def run_components(model: ModelAdapter, probes: list[Probe]) -> list[ComponentSpec]:
    """The replayable specs of what a run used: the model adapter (when it can give one) and every
    attack transform its probes went through (those still registered here)."""
    spec = getattr(model, "component_spec", None)
    out = [spec()] if callable(spec) else []
    used = sorted({name for p in probes for name in p.transforms})
    return out + [TRANSFORMS.get(name).spec() for name in used if name in TRANSFORMS]


def start_run(plan: RunPlan, store: Store, model: ModelAdapter, *, engine: dict[str, Any],
              versions: dict[str, str], run_dir: str | Path | None) -> tuple[RunManifest, dict[str, int]]:
    """Record the run before any reply is sent: the manifest (resumed runs keep their start time),
    the probes, the replies already stored, the counts; ``run.json`` and ``manifest.json`` in
    ``run_dir``. Returns the manifest and the counts the run then updates."""
    previous = store.get_run(plan.run_id) if store.has_run(plan.run_id) else None
    manifest = RunManifest(
        run_id=plan.run_id, probe_set_hash=plan.probe_set_hash, model=model.spec,
        params={**plan.params.as_dict(), "samples": plan.samples, "model_spec_hash": model.spec_hash,
                "model_adapter": model.describe(), "engine": engine},
        versions=versions, git_revision=git_revision(), components=run_components(model, plan.probes),
        started_at=previous.started_at if previous else _now(), ended_at=None,
    )
    store.add_probes(plan.run_id, plan.probes)
    store.link_replies(plan.run_id, plan.cached)
    counts = plan.counts()
    manifest.counts = dict(counts)
    store.save_run(manifest)
    if run_dir is not None:
        write_run_dir(run_dir, plan.run_id, store.path, manifest)
    return manifest, counts


def _versions(model: ModelAdapter) -> dict[str, str]:
    out = {"python": platform.python_version(), "engine": ENGINE_VERSION}
    for pkg in ("harmscope", "pydantic", "httpx", "torch", "transformers", "llama_cpp_python"):
        if pkg in ("torch", "transformers") and pkg not in sys.modules:
            continue
        try:
            out[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    out["adapter"] = f"{model.kind}@{model.describe().get('version', '1')}"
    return out


_GIT: list[str | None] = []


def git_revision() -> str | None:
    """The git commit of the harmscope source tree, if it is a checkout."""
    if not _GIT:
        root = Path(__file__).resolve().parents[3]
        rev = None
        if (root / ".git").exists():
            try:
                r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                   text=True, timeout=5)
                rev = r.stdout.strip() or None if r.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                rev = None
        _GIT.append(rev)
    return _GIT[0]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _estimate_tokens(probe: Probe, params: GenParams) -> int:
    chars = sum(len(m.content) for m in probe.messages) + len(params.system or "")
    return chars // 4 + 8 * len(probe.messages) + params.max_tokens


async def arun_probes(
    probe_set: ProbeSet,
    model: ModelAdapter,
    store: Store,
    *,
    params: GenParams | dict[str, Any] | None = None,
    concurrency: int = 8,
    rate: float | None = None,
    tokens_per_min: float | None = None,
    samples: int = 1,
    timeout: float | None = 60.0,
    max_retries: int = 5,
    run_dir: str | Path | None = None,
    progress: bool = True,
    preflight: bool = True,
    backoff_base: float = 0.5,
    backoff_max: float = 60.0,
    seed: int = 0,
) -> RunManifest:
    """Async :func:`run_probes`."""
    if concurrency < 1:
        raise HarmscopeError(f"concurrency must be >= 1, got {concurrency}")
    plan = plan_run(probe_set, model, params, samples)
    if max_retries < 0:
        raise HarmscopeError(f"max_retries must be >= 0, got {max_retries}")
    with run_lock(store.path, plan.run_id):
        return await _arun_locked(
            plan, model, store, concurrency=concurrency, rate=rate, tokens_per_min=tokens_per_min,
            timeout=timeout, max_retries=max_retries, run_dir=run_dir, progress=progress, preflight=preflight,
            backoff_base=backoff_base, backoff_max=backoff_max, seed=seed)


UNSAVED = "unsaved-replies.jsonl"


def _restore_unsaved(store: Store, run_dir: str | Path | None, run_id: str) -> int:
    """Put replies that a previous process could not write (store fault) into the store."""
    if run_dir is None:
        return 0
    path = Path(run_dir) / UNSAVED
    if not path.is_file():
        return 0
    items = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            if rec.get("run_id") == run_id:
                items.append((str(rec["key"]), Response.model_validate(rec["response"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    store.put_replies(run_id, items)
    path.unlink()
    return len(items)


def _save_unsaved(run_dir: str | Path | None, run_id: str, pending: list[tuple[str, Response]]) -> Path | None:
    """Keep replies the store could not take in ``RUN_DIR/unsaved-replies.jsonl`` (secrets masked)."""
    if run_dir is None or not pending:
        return None
    path = Path(run_dir) / UNSAVED
    old = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    new = "".join(secrets.mask(json.dumps({"run_id": run_id, "key": k, "response": r.model_dump(mode="json")}))
                  + "\n" for k, r in pending)
    try:
        atomic_write_text(path, old + new)
    except HarmscopeError:
        return None
    return path


async def _arun_locked(plan: RunPlan, model: ModelAdapter, store: Store, *, concurrency: int, rate: float | None,
                       tokens_per_min: float | None, timeout: float | None, max_retries: int,
                       run_dir: str | Path | None, progress: bool, preflight: bool, backoff_base: float,
                       backoff_max: float, seed: int) -> RunManifest:
    run_id, params, spec = plan.run_id, plan.params, model.spec
    _restore_unsaved(store, run_dir, run_id)
    plan.check_store(store)
    by_id = {p.id: p for p in plan.probes}
    jobs = [_Job(by_id[pid], s, plan.keys[(pid, s)]) for pid, s in plan.todo]
    if jobs and preflight:
        if timeout and hasattr(model, "preflight_timeout"):
            model.preflight_timeout = timeout  # --timeout bounds the whole test request
        await model.preflight()  # fail fast, before anything is written

    manifest, counts = start_run(
        plan, store, model, run_dir=run_dir, versions=_versions(model),
        engine={"concurrency": concurrency, "rate": rate, "tokens_per_min": tokens_per_min, "timeout": timeout,
                "max_retries": max_retries})
    store_path = store.path

    rng = random.Random(seed)
    req_bucket = TokenBucket(rate) if rate else None
    tok_bucket = TokenBucket(tokens_per_min / 60.0, capacity=max(tokens_per_min / 6.0, 1.0)) if tokens_per_min else None
    use_timeout = timeout if (timeout and not model.local) else None

    async def attempt(job: _Job) -> Response:
        tries = 0
        est = _estimate_tokens(job.probe, params) if tok_bucket else 0
        while True:
            tries += 1
            if req_bucket is not None:
                await req_bucket.acquire(1)
            if tok_bucket is not None:
                await tok_bucket.acquire(est)
            retry_after: float | None = None
            t0 = time.perf_counter()
            try:
                coro = model.generate(job.probe.messages, params, probe_id=job.probe.id, sample=job.sample)
                resp = await (asyncio.wait_for(coro, use_timeout) if use_timeout else coro)
                if tok_bucket is not None and resp.completion_tokens is not None:
                    used = (resp.prompt_tokens or 0) + resp.completion_tokens
                    tok_bucket.refund(max(0, est - used))
                return resp.model_copy(update={
                    "probe_id": job.probe.id, "sample": job.sample, "model": spec, "attempts": tries,
                    "latency_s": resp.latency_s if resp.latency_s is not None
                    else round(time.perf_counter() - t0, 4),
                })
            except ModelCallError as exc:
                retryable, retry_after, msg = exc.retryable, exc.retry_after, str(exc)
            except TimeoutError:
                retryable, msg = True, f"timeout after {use_timeout:g}s"
            except (ConnectionError, OSError) as exc:
                retryable, msg = True, f"connection error ({type(exc).__name__})"
            except Exception as exc:  # a bug or a bad reply in an adapter: recorded, not fatal
                retryable, msg = False, f"{type(exc).__name__}: {exc}"
            if not retryable or tries > max_retries:
                return Response(probe_id=job.probe.id, sample=job.sample, model=spec, error=msg,
                                attempts=tries, latency_s=round(time.perf_counter() - t0, 4))
            counts["retries"] += 1
            if retry_after is not None:
                delay = min(retry_after, 300.0) + rng.uniform(0, min(1.0, 0.1 * retry_after))
            else:
                cap = min(backoff_max, backoff_base * 2 ** (tries - 1))
                delay = cap / 2 + rng.uniform(0, cap / 2)
            await asyncio.sleep(delay)

    pending: list[tuple[str, Response]] = []
    wake = asyncio.Event()
    bar = progress_bar(len(plan.keys), f"run {run_id[:8]}", enabled=progress and bool(jobs),
                       completed=len(plan.cached), fields={"failed": 0}, rate=True, eta=True)

    def flush() -> None:
        if pending:
            batch = pending[:]
            pending.clear()
            try:
                store.put_replies(run_id, batch)
            except BaseException:
                pending[:0] = batch  # keep them for the final flush
                raise

    async def writer() -> None:
        while True:
            await wake.wait()
            wake.clear()
            flush()

    it: Iterator[_Job] = iter(jobs)

    async def worker() -> None:
        for job in it:
            if writer_task.done() and not writer_task.cancelled() and writer_task.exception():
                raise writer_task.exception()  # the store cannot be written: stop, do not waste calls
            resp = await attempt(job)
            pending.append((job.key, resp))
            wake.set()
            if resp.ok:
                counts["answered"] += 1
            else:
                counts["failed"] += 1
            counts["missing"] -= 1
            bar.advance(failed=counts["failed"])

    writer_task = asyncio.create_task(writer())
    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(jobs)))]
    interrupted = False
    try:
        await asyncio.gather(*workers)
    except BaseException:
        interrupted = True
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        writer_task.cancel()
        await asyncio.gather(writer_task, return_exceptions=True)
        bar.stop()
        try:
            await model.aclose()
        except Exception:  # noqa: BLE001 - closing must not hide the run's outcome
            pass
        try:
            flush()
            manifest.counts = dict(counts)
            manifest.versions = _versions(model)
            manifest.ended_at = None if interrupted else _now()
            store.save_run(manifest)
        except StoreError as exc:
            kept = _save_unsaved(run_dir, run_id, pending)
            note = f"; {len(pending)} replies not yet stored were kept in {kept} for the next run" if kept else ""
            raise StoreError(f"{exc}{note}") from None
        finally:
            stored = counts["answered"] + counts["failed"] - len(pending)
            if stored > 0:
                note_saved(f"{stored} replies of run {run_id[:12]} in store {store_path}")
        if run_dir is not None:
            write_run_dir(run_dir, run_id, store_path, manifest)
    return manifest


def run_probes(
    probe_set: ProbeSet,
    model: ModelAdapter,
    store: Store | str | Path | None = None,
    *,
    params: GenParams | dict[str, Any] | None = None,
    concurrency: int = 8,
    rate: float | None = None,
    tokens_per_min: float | None = None,
    samples: int = 1,
    timeout: float | None = 60.0,
    max_retries: int = 5,
    run_dir: str | Path | None = None,
    progress: bool = True,
    **kw: Any,
) -> RunManifest:
    """Send every probe (``samples`` times) to ``model`` and store the replies; return the manifest.

    ``store`` is a :class:`Store`, a path, or None (``RUN_DIR/../harmscope.sqlite``). Re-running
    with the same probes, model and params resumes the same run. Extra keywords go to
    :func:`arun_probes` (``preflight``, ``backoff_base``, ``backoff_max``, ``seed``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HarmscopeError("run_probes was called inside a running event loop: await arun_probes(...) instead")
    if store is None:
        if run_dir is None:
            raise HarmscopeError("run_probes needs a store or a run_dir")
        store = default_store_path(run_dir)
    if not isinstance(store, Store):
        store = Store(store)
    return asyncio.run(arun_probes(
        probe_set, model, store, params=params, concurrency=concurrency, rate=rate,
        tokens_per_min=tokens_per_min, samples=samples, timeout=timeout, max_retries=max_retries,
        run_dir=run_dir, progress=progress, **kw,
    ))
