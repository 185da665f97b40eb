"""Execution engines for bulk work: the in-process default and Dask (imported lazily).

An engine maps a function over items and returns the results in input order::

    from harmscope.engines import engine_scope, predict_dataset

    with engine_scope("dask:2") as eng:          # or "local", "dask", "dask://host:8786"
        proba = predict_dataset("out/models/tfidf", texts, engine=eng)

Specs: ``local`` (plain loop, the default), ``dask`` (a LocalCluster with one single-threaded
worker process per core), ``dask:N`` (N single-threaded worker processes), ``dask://HOST:PORT``
(an existing scheduler). ``current_engine()`` reads ``$HARMSCOPE_ENGINE`` (set by
``harmscope --engine ...``) and keeps one engine per spec for the life of the process.

The bulk entry points live here so callers need one import and no Dask knowledge:
:func:`predict_dataset` (partitioned classifier scoring), :func:`bootstrap_map` /
:func:`chunk_mapper` / :func:`bias_metrics` (distributed fairness bootstrap) and
:func:`run_replicas` (probes sent to several replicas of one model). Nothing here imports Dask at
module level; everything Dask-specific is in :mod:`harmscope.engines.dask`.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harmscope.errors import HarmscopeError

__all__ = [
    "Engine", "LocalEngine", "bias_metrics", "bootstrap_map", "chunk_mapper", "current_engine", "engine_scope",
    "get_engine", "parse_spec", "plan_partitions", "predict_dataset", "run_replicas", "write_partitions",
]

ENV_VAR = "HARMSCOPE_ENGINE"
DEFAULT_PARTITION_SIZE = 4096  # texts per task; a multiple of 64 keeps encoder batches aligned
CONNECT_TIMEOUT_S = 5.0

_SPEC_RE = re.compile(r"^dask://(?P<host>[^:/\s]+):(?P<port>\d{1,5})/?$")


# ---------------------------------------------------------------------- engines
@runtime_checkable
class Engine(Protocol):
    """What every engine offers. ``map`` keeps input order; ``close`` is idempotent."""

    name: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None) -> list:
        ...

    def close(self) -> None:
        ...


class LocalEngine:
    """The default: a plain in-process loop, no threads, no copies, no overhead.

    ``submit``/``wait_first`` (used by :func:`run_replicas`) run tasks on a small thread pool.
    """

    name = "local"
    workers = 1

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None) -> list:
        return [fn(x) for x in items]

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=32,
                                            thread_name_prefix="harmscope-local")
        return self._pool.submit(fn, *args, **kw)

    @staticmethod
    def wait_first(futures: Sequence[Future]) -> tuple[set, set]:
        done, pending = wait(futures, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return "LocalEngine()"

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_spec(spec: str | None) -> tuple[str, Any]:
    """``(kind, arg)`` for an engine spec: ``("local", None)``, ``("dask", None)``,
    ``("dask", N)`` or ``("dask-remote", "tcp://HOST:PORT")``; a bad spec raises one line."""
    s = (spec or "local").strip()
    low = s.lower()
    if low == "local":
        return "local", None
    if low == "dask":
        return "dask", None
    if low.startswith("dask:") and not low.startswith("dask://"):
        n = low[len("dask:"):]
        if not n.isdigit() or int(n) < 1:
            raise HarmscopeError(f"bad engine spec {s!r}: the worker count in dask:N must be a whole number >= 1")
        return "dask", int(n)
    m = _SPEC_RE.match(s)
    if m:
        port = int(m.group("port"))
        if not 0 < port < 65536:
            raise HarmscopeError(f"bad engine spec {s!r}: port must be 1-65535")
        return "dask-remote", f"tcp://{m.group('host')}:{port}"
    raise HarmscopeError(f"bad engine spec {s!r}: expected local, dask, dask:N or dask://HOST:PORT")


def get_engine(spec: str | None = None, **kw: Any) -> Any:
    """A new engine for ``spec`` (default ``local``). The caller closes it (or use :func:`engine_scope`).

    Keywords go to the Dask engine (e.g. ``connect_timeout``, ``dashboard``).
    """
    kind, arg = parse_spec(spec)
    if kind == "local":
        return LocalEngine()
    try:
        from harmscope.engines.dask import DaskEngine
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise HarmscopeError(f"engine {spec!r} needs dask: pip install 'dask[distributed]' ({exc})") from None
    if kind == "dask":
        return DaskEngine.local_cluster(arg, **kw)
    return DaskEngine.connect(arg, **kw)


_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()
_OVERRIDE: list[Any] = []  # engines made current by engine_scope (innermost last)


def current_engine() -> Any:
    """The engine in force: the innermost :func:`engine_scope`, else ``$HARMSCOPE_ENGINE`` (default
    local). Engines made from the environment are shared for the life of the process."""
    if _OVERRIDE:
        return _OVERRIDE[-1]
    spec = os.environ.get(ENV_VAR) or "local"
    kind, arg = parse_spec(spec)
    if kind == "local":
        return _LOCAL
    key = f"{kind}:{arg}"
    with _SHARED_LOCK:
        eng = _SHARED.get(key)
        if eng is None or getattr(eng, "closed", False):
            eng = _SHARED[key] = get_engine(spec)
    return eng


def _close_shared() -> None:
    for eng in list(_SHARED.values()):
        try:
            eng.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _SHARED.clear()


atexit.register(_close_shared)
_LOCAL = LocalEngine()


@contextmanager
def engine_scope(spec: str | Any | None = None, **kw: Any) -> Iterator[Any]:
    """Make an engine current for the ``with`` block; one made here from a spec is closed after.

    ``spec`` may be a spec string, an engine, or None (``$HARMSCOPE_ENGINE``, default local).
    """
    if spec is None:
        spec = os.environ.get(ENV_VAR) or "local"
    own = isinstance(spec, str)
    eng = get_engine(spec, **kw) if own else spec
    _OVERRIDE.append(eng)
    try:
        yield eng
    finally:
        _OVERRIDE.remove(eng)
        if own:
            eng.close()


def resolve_engine(engine: str | Any | None) -> tuple[Any, bool]:
    """``(engine, owned)``: None -> :func:`current_engine`; a spec string -> a new engine (owned)."""
    if engine is None:
        return current_engine(), False
    if isinstance(engine, str):
        kind, _ = parse_spec(engine)
        if kind == "local":
            return _LOCAL, False
        return get_engine(engine), True
    return engine, False


def is_local(engine: Any) -> bool:
    return getattr(engine, "name", "local") == "local"


# ---------------------------------------------------------------------- classifier scoring
def _texts(texts_or_frame: Any) -> list[str]:
    import pandas as pd

    if isinstance(texts_or_frame, pd.DataFrame):
        if "text" not in texts_or_frame.columns:
            raise HarmscopeError("predict_dataset: the frame has no 'text' column")
        texts_or_frame = texts_or_frame["text"]
    if isinstance(texts_or_frame, str):
        raise HarmscopeError("predict_dataset: give a list of texts, not one string")
    return [str(t) for t in texts_or_frame]


def plan_partitions(texts: Sequence[str], partition_size: int = DEFAULT_PARTITION_SIZE,
                    align: int = 64) -> tuple[list[list[str]], np.ndarray]:
    """Cut ``texts`` into partitions for remote scoring: ``(partitions, inverse)``.

    Equal texts are scored once; unique texts (first-appearance order) are ordered by length
    (stable), as the neural backends batch them, and cut into partitions whose size is a multiple
    of ``align`` (the encoder batch size), so each worker sees exactly the batches a local run
    would: results then match the local engine. ``concat(results)[inverse]`` restores input order.
    """
    import pandas as pd

    if partition_size < 1:
        raise HarmscopeError(f"partition_size must be >= 1, got {partition_size}")
    codes, uniq = pd.factorize(pd.Series(list(texts), dtype=object), sort=False)
    uniq = list(uniq)
    order = np.argsort(np.fromiter((len(t) for t in uniq), dtype=np.int64, count=len(uniq)), kind="stable")
    size = max(align, (partition_size // align) * align) if align else partition_size
    parts = [[uniq[i] for i in order[s:s + size]] for s in range(0, len(uniq), size)]
    pos = np.empty(len(uniq), dtype=np.int64)
    pos[order] = np.arange(len(uniq))
    return parts, pos[codes]


def predict_dataset(classifier_spec: Any, texts_or_frame: Any, *, engine: str | Any | None = None,
                    partition_size: int = DEFAULT_PARTITION_SIZE, out_dir: str | Path | None = None,
                    progress: bool | None = None, spec: str | Path | None = None) -> np.ndarray:
    """``predict_proba`` of a classifier over many texts: an ``(n, 2)`` array in input order.

    ``classifier_spec``: a model folder / ``detoxify:...`` spec (see ``load_classifier``) or a
    fitted estimator. On the local engine this is ``load_classifier(spec).predict_proba(texts)``
    and nothing else. On Dask, partitions of texts go to the workers, each worker loads the model
    once (per process cache) and returns scores. Given an estimator plus ``spec`` (the folder it
    was loaded from), remote workers load ``spec`` instead of receiving the pickled estimator.
    With ``out_dir``, Parquet partitions ``part-00000.parquet``... (columns ``row``, ``p0``, ``p1``;
    ``partition_size`` rows each, input order) are written by the client.
    """
    if isinstance(texts_or_frame, str):
        raise HarmscopeError("predict_dataset: give a list of texts, not one string")
    eng, owned = resolve_engine(engine)
    try:
        if is_local(eng):  # exactly the direct call: the input goes to predict_proba untouched
            if isinstance(classifier_spec, str | Path):
                from harmscope.classifiers.backends import load_classifier

                est = load_classifier(str(classifier_spec))
            else:
                est = classifier_spec
            proba = np.asarray(est.predict_proba(texts_or_frame))
        else:
            texts = _texts(texts_or_frame)
            remote = spec if spec is not None and not isinstance(classifier_spec, str | Path) else classifier_spec
            proba = eng.predict(remote, texts, partition_size=partition_size, progress=progress)
    finally:
        if owned:
            eng.close()
    if out_dir is not None:
        write_partitions(proba, out_dir, partition_size)
    return proba


def write_partitions(proba: np.ndarray, out_dir: str | Path, partition_size: int) -> list[Path]:
    """Write scores as Parquet partitions (``row``, ``p0``, ``p1``) of ``partition_size`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("part-*.parquet"):
        old.unlink()
    proba = np.asarray(proba, dtype=np.float64).reshape(len(proba), -1)
    paths = []
    for i, s in enumerate(range(0, max(len(proba), 1), partition_size)):
        block = proba[s:s + partition_size]
        cols = {"row": pa.array(np.arange(s, s + len(block), dtype=np.int64))}
        for j in range(block.shape[1]):
            cols[f"p{j}"] = pa.array(block[:, j])
        p = d / f"part-{i:05d}.parquet"
        pq.write_table(pa.table(cols), p)
        paths.append(p)
    return paths


# ---------------------------------------------------------------------- bootstrap
def bootstrap_map(chunk_fn: Callable[[Any], Any], chunks: Sequence[Any], engine: str | Any | None = None) -> list:
    """``[chunk_fn(c) for c in chunks]`` on ``engine``, in chunk order.

    The chunks carry their own seeds (``harmscope.fairness.bootstrap.bootstrap_chunks``), so the
    result does not depend on the number of workers. On Dask, ``chunk_fn`` (with the data it
    closes over) is sent to each worker once, not once per chunk.
    """
    eng, owned = resolve_engine(engine)
    try:
        return eng.map(chunk_fn, list(chunks), label="bootstrap")
    finally:
        if owned:
            eng.close()


def chunk_mapper(engine: str | Any | None = None) -> Callable[[Callable, list], list] | None:
    """A ``map_chunks`` argument for ``harmscope.fairness.bias_metrics``; None on the local engine
    (so the fairness code keeps its own serial loop)."""
    eng, owned = resolve_engine(engine)
    if is_local(eng):
        return None
    if owned:  # keep it alive as long as the process: the caller cannot close what it never sees
        _SHARED[f"owned:{id(eng)}"] = eng

    def mapper(fn: Callable, chunks: list) -> list:
        return eng.map(fn, chunks, label="bootstrap")

    return mapper


def bias_metrics(y_true: Any, y_score: Any, groups: Any, *, engine: str | Any | None = None, **kw: Any) -> Any:
    """``harmscope.fairness.bias_metrics`` with its bootstrap chunks run on ``engine``.

    Identical (same CIs, bit for bit) to the local call for the same ``seed`` and ``chunk_size``.
    """
    from harmscope.fairness.jigsaw import bias_metrics as _bias_metrics

    eng, owned = resolve_engine(engine)
    try:
        mapper = None if is_local(eng) else (lambda fn, chunks: eng.map(fn, chunks, label="bootstrap"))
        return _bias_metrics(y_true, y_score, groups, map_chunks=mapper, **kw)
    finally:
        if owned:
            eng.close()


# ---------------------------------------------------------------------- replicas
_ADAPTERS: dict[str, Any] = {}  # per process (worker): spec -> model adapter
_ADAPTERS_LOCK = threading.Lock()


def _adapter(spec: str) -> Any:
    from harmscope.models import load_model

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
    import asyncio
    import shutil
    import tempfile

    from harmscope.benchmarks.runs.engine import arun_probes
    from harmscope.benchmarks.runs.store import Store
    from harmscope.models.base import GenParams
    from harmscope.types import ProbeSet, ProbeSetManifest, Response, content_hash

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


def progress_bar(enabled: bool | None, total: int, label: str, **fields: Any) -> Any:
    """A started rich progress bar on stderr with one task (or None when disabled or a non-tty)."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total <= 0:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    cols += [TextColumn(f"{k} {{task.fields[{k}]}}") for k in fields]
    bar = Progress(*cols, TimeElapsedColumn(), console=Console(stderr=True), transient=False,
                   refresh_per_second=4)
    bar.add_task(label, total=total, **fields)
    bar.start()
    return bar


def run_replicas(probe_set: Any, model_specs: Sequence[str], store: Any, *, params: Any = None,
                 per_endpoint_concurrency: int = 4, rate: float | None = None, samples: int = 1,
                 engine: str | Any | None = None, batch_size: int | None = None, timeout: float | None = 60.0,
                 max_retries: int = 5, run_dir: str | Path | None = None, progress: bool | None = None,
                 preflight: bool = True) -> Any:
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
    import asyncio
    from collections import deque
    from datetime import UTC, datetime

    from harmscope.benchmarks.runs.engine import git_revision, run_id_for
    from harmscope.benchmarks.runs.store import Store, write_run_dir
    from harmscope.models import load_model
    from harmscope.models.base import GenParams
    from harmscope.types import RunManifest

    specs = [str(s) for s in model_specs]
    if not specs:
        raise HarmscopeError("run_replicas: give at least one model endpoint")
    if len(set(specs)) != len(specs):
        raise HarmscopeError("run_replicas: the same endpoint is listed twice")
    if per_endpoint_concurrency < 1:
        raise HarmscopeError(f"per-endpoint concurrency must be >= 1, got {per_endpoint_concurrency}")
    if samples < 1:
        raise HarmscopeError(f"samples must be >= 1, got {samples}")
    gp = GenParams() if params is None else (GenParams(**params) if isinstance(params, dict) else params)
    if not isinstance(store, Store):
        store = Store(store)
    adapters = [load_model(s) for s in specs]
    primary = adapters[0]

    seen: set[str] = set()
    probes = [p for p in probe_set.probes if not (p.id in seen or seen.add(p.id))]
    by_id = {p.id: p for p in probes}
    ps_hash = probe_set.manifest.set_hash
    run_id = run_id_for(ps_hash, primary.spec_hash, gp, samples)
    now = lambda: datetime.now(UTC).isoformat(timespec="seconds")  # noqa: E731
    previous = store.get_run(run_id) if store.has_run(run_id) else None
    eng, owned = resolve_engine(engine)
    manifest = RunManifest(
        run_id=run_id, probe_set_hash=ps_hash, model=primary.spec,
        params={**gp.as_dict(), "samples": samples, "model_spec_hash": primary.spec_hash,
                "model_adapter": primary.describe(),
                "engine": {"kind": "replicas", "executor": getattr(eng, "spec", eng.name),
                           "endpoints": [a.spec for a in adapters],
                           "per_endpoint_concurrency": per_endpoint_concurrency, "rate": rate,
                           "timeout": timeout, "max_retries": max_retries}},
        versions={"engine": "replicas-1"}, git_revision=git_revision(),
        started_at=previous.started_at if previous else now(), ended_at=None)
    store.add_probes(run_id, probes)
    p_hash = gp.hash()
    key_of = {(p.id, s): Store.reply_key(primary.spec_hash, p_hash, p.id, s) for p in probes for s in range(samples)}
    status = store.reply_status(key_of.values())
    cached = [k for k in key_of.values() if status.get(k)]
    store.link_replies(run_id, cached)
    todo = [(pid, s) for (pid, s), k in key_of.items() if not status.get(k)]
    counts = {"total": len(key_of), "answered": 0, "failed": 0, "cached": len(cached), "missing": len(todo),
              "retries": 0}
    manifest.counts = dict(counts)
    store.save_run(manifest)
    if run_dir is not None:
        write_run_dir(run_dir, run_id, store.path, manifest)

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
        bar = progress_bar(progress, len(todo), f"run {run_id[:8]} x{len(specs)}", failed=0)
        gp_dict = gp.as_dict()

        def launch(spec: str) -> None:
            batch = queue.popleft()
            batch_probes = list({pid: by_id[pid] for pid, _ in batch}.values())
            fut = eng.submit(replica_batch, spec, batch_probes, batch, gp_dict, samples,
                             per_endpoint_concurrency, rate, timeout, max_retries)
            inflight[fut] = (spec, batch)

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
                        items.append((key_of[(pid, s)], r))
                        counts["answered" if r.ok else "failed"] += 1
                        counts["retries"] += max(0, r.attempts - 1)
                        counts["missing"] -= 1
                    store.put_replies(run_id, items)
                    per_endpoint[spec] += len(items)
                    if bar is not None:
                        bar.update(bar.task_ids[0], advance=len(items), failed=counts["failed"])
                    if queue:  # the endpoint that just finished is the least loaded
                        launch(spec)
        finally:
            if bar is not None:
                bar.stop()
            interrupted = bool(inflight)
            for fut in inflight:
                fut.cancel()
            manifest.params["engine"]["replies_per_endpoint"] = {
                a.spec: per_endpoint[s] for a, s in zip(adapters, specs, strict=True)}
            manifest.counts = dict(counts)
            manifest.ended_at = None if interrupted else now()
            store.save_run(manifest)
            if run_dir is not None:
                write_run_dir(run_dir, run_id, store.path, manifest)
    finally:
        if owned:
            eng.close()
    return manifest


def engine_option(f: Callable) -> Callable:
    """The ``--engine`` option of the bulk-work commands (audit, score, experiment, predict, run).

    It sets ``$HARMSCOPE_ENGINE`` for the command, like ``harmscope --engine ...`` does for all.
    """
    import click

    def _apply(ctx: Any, param: Any, value: str | None) -> str | None:
        if value:
            parse_spec(value)
            os.environ[ENV_VAR] = value
        return value

    return click.option("--engine", default=None, expose_value=False, callback=_apply, is_eager=True,
                        metavar="local|dask|dask:N|dask://HOST:PORT",
                        help="Execution engine for the bulk work (default: local).")(f)
