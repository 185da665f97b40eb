"""Everything Dask-specific: the Dask engine, worker-side model cache, progress from the cluster.

Imported only when a ``dask`` engine is asked for (see :mod:`harmscope.engines`). Functions
defined here are pickled by reference, so workers import this module and keep their per-process
model cache (:data:`_MODELS`) between tasks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmscope.errors import HarmscopeError

SHIP_LIMIT_BYTES = 2 * 1024**3  # model folders up to this size may be sent to workers as bytes

# ---------------------------------------------------------------------- worker side
_MODELS: dict[str, Any] = {}
_LOADS: Counter = Counter()  # loads per model key in this process (tests check "once per worker")
_LOCK = threading.Lock()


def _call(item: Any, fn: Callable[[Any], Any]) -> Any:
    """Task body of :meth:`DaskEngine.map`: ``fn`` arrives once per worker as scattered data."""
    return fn(item)


def _materialise(key: str, files: dict[str, bytes]) -> Path:
    """Write a shipped model folder under the worker's temp dir (once per content hash)."""
    root = Path(tempfile.gettempdir()) / "harmscope-models" / key
    done = root / ".complete"
    if not done.is_file():
        tmp = root.with_name(f"{key}.{os.getpid()}.tmp")
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, root)
        except OSError:  # another process won the race
            pass
        (root / ".complete").touch()
    return root


def worker_model(source: tuple[str, str, Any]) -> Any:
    """The classifier for ``source`` = ``(kind, key, payload)``, loaded once per worker process.

    kind ``path``: payload is a spec string (model folder visible to the worker, ``detoxify:...``);
    ``bytes``: payload is ``{relative path: bytes}`` of a model folder; ``object``: a fitted estimator.
    """
    kind, key, payload = source
    if kind == "object":  # already deserialised once per worker by Dask (scattered data)
        return payload
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            from harmscope.classifiers.backends import load_classifier

            spec = str(_materialise(key, payload)) if kind == "bytes" else payload
            model = load_classifier(spec)
            _MODELS[key] = model
            _LOADS[key] += 1
    return model


def _predict_part(texts: list[str], source: tuple[str, str, Any]) -> np.ndarray:
    return np.asarray(worker_model(source).predict_proba(texts))


def _load_counts() -> dict[str, int]:
    return dict(_LOADS)


def _sees_model(path: str, digest: str) -> bool:
    p = Path(path) / "model.json"
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest() == digest
    except OSError:
        return False


# ---------------------------------------------------------------------- client side
def _folder_fingerprint(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(d)}\x1f{st.st_size}\x1f{st.st_mtime_ns}\x1e".encode())
    return h.hexdigest()[:24]


class DaskEngine:
    """An engine backed by a ``distributed.Client`` (a LocalCluster it owns, or a remote scheduler)."""

    name = "dask"

    def __init__(self, client: Any, cluster: Any = None, *, spec: str = "dask", progress: bool | None = None):
        self.client = client
        self.cluster = cluster
        self.spec = spec
        self.progress = progress
        self.closed = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def local_cluster(cls, n_workers: int | None = None, *, threads_per_worker: int = 1,
                      dashboard: bool = False, progress: bool | None = None, **kw: Any) -> DaskEngine:
        """A LocalCluster of ``n_workers`` worker processes (default: one per core)."""
        import dask
        from distributed import Client, LocalCluster

        n = n_workers or os.cpu_count() or 1
        kw.pop("connect_timeout", None)
        # One thread per BLAS/OpenMP pool, as Dask sets by default; but leave glibc's malloc alone:
        # Dask's default MALLOC_TRIM_THRESHOLD_ also switches off glibc's adaptive mmap threshold,
        # so every large numpy/torch temporary is mmap'ed and page-faulted afresh (measured here:
        # up to 1.7x the CPU time of the same bootstrap chunk in-process).
        environ = {k: v for k, v in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items()
                   if k != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.logging.distributed": "error",
                              "distributed.nanny.pre-spawn-environ": environ}):
            try:
                cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                                       host="127.0.0.1", dashboard_address=":0" if dashboard else None,
                                       scheduler_kwargs={"dashboard": dashboard, "dashboard_address": ":0"},
                                       silence_logs=40, **kw)
            except Exception as exc:  # noqa: BLE001 - one line for the user
                raise HarmscopeError(f"cannot start a local Dask cluster with {n} workers: {exc}") from None
            client = Client(cluster, set_as_default=False)
        spec = "dask" if n_workers is None else f"dask:{n}"
        return cls(client, cluster, spec=spec, progress=progress)

    @classmethod
    def connect(cls, address: str, *, connect_timeout: float | None = None,
                progress: bool | None = None) -> DaskEngine:
        """A client of the scheduler at ``address`` (``tcp://HOST:PORT``); one line if unreachable."""
        from distributed import Client

        from harmscope.engines import CONNECT_TIMEOUT_S

        t = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
        shown = address.replace("tcp://", "dask://")
        try:
            client = Client(address, timeout=f"{t}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) or "Timed out" in str(exc) else type(exc).__name__
            raise HarmscopeError(f"Dask scheduler {shown} is unreachable ({why} after {t:g}s)") from None
        return cls(client, None, spec=shown, progress=progress)

    # ------------------------------------------------------------------ info
    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def worker_pids(self) -> dict[str, int]:
        """``worker address -> OS pid`` (tests kill one)."""
        return self.client.run(os.getpid)

    def model_loads(self) -> dict[str, dict[str, int]]:
        """Per worker: how often each model was loaded in that process."""
        return self.client.run(_load_counts)

    def __repr__(self) -> str:
        return f"DaskEngine({self.spec!r})"

    # ------------------------------------------------------------------ work
    def _gather(self, futures: Sequence[Any], label: str) -> list:
        """Results in input order, advancing a progress bar as futures complete."""
        from distributed import as_completed

        from harmscope.engines import progress_bar

        bar = progress_bar(self.progress, len(futures), label, workers=self.workers)
        try:
            if bar is not None:
                for _ in as_completed(futures):
                    bar.advance(bar.task_ids[0])
            return self.client.gather(list(futures))
        finally:
            if bar is not None:
                bar.stop()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None) -> list:
        items = list(items)
        if not items:
            return []
        token = uuid.uuid4().hex[:12]
        fn_future = self.client.scatter(fn, broadcast=True, hash=False)
        try:
            futures = self.client.map(_call, items, fn=fn_future, pure=False,
                                      key=[f"harmscope-{label or 'map'}-{token}-{i}" for i in range(len(items))])
            return self._gather(futures, label or "map")
        finally:
            del fn_future

    def _model_source(self, classifier: Any) -> tuple[str, str, Any]:
        if not isinstance(classifier, str | Path):
            key = f"object:{uuid.uuid4().hex}"
            return "object", key, self.client.scatter(classifier, broadcast=True, hash=False)
        spec = str(classifier)
        if spec.startswith("detoxify:") and len(spec) > len("detoxify:"):  # paths as the client sees them
            spec = "detoxify:" + "::".join(str(Path(x).expanduser().resolve())
                                           for x in spec[len("detoxify:"):].split("::"))
        p = Path(spec).expanduser()
        if not (p.is_dir() and (p / "model.json").is_file()):
            return "path", f"spec:{spec}", spec  # detoxify:..., a backend name: resolved on the worker
        p = p.resolve()
        fp = _folder_fingerprint(p)
        if self.cluster is not None:  # our own LocalCluster shares this filesystem
            return "path", f"path:{p}:{fp}", str(p)
        digest = hashlib.sha256((p / "model.json").read_bytes()).hexdigest()
        seen = self.client.run(_sees_model, str(p), digest)
        if seen and all(seen.values()):
            return "path", f"path:{p}:{fp}", str(p)
        files = {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
        size = sum(map(len, files.values()))
        if size > SHIP_LIMIT_BYTES:
            raise HarmscopeError(f"{p}: the workers cannot see this model folder and it is too large to send "
                                 f"({size / 1e9:.1f} GB); put it on a filesystem the workers share")
        return "bytes", fp, self.client.scatter(files, broadcast=True, hash=False)

    def predict(self, classifier: Any, texts: Sequence[str], *, partition_size: int,
                progress: bool | None = None) -> np.ndarray:
        """Partitioned ``predict_proba``; see :func:`harmscope.engines.predict_dataset`."""
        from harmscope.engines import plan_partitions

        if not texts:
            return np.zeros((0, 2))
        # at least ~8 partitions per worker, so the last (longest-text) partitions do not leave
        # workers idle; sizes stay multiples of 64, so encoder batches still match a local run
        per = -(-len(set(texts)) // (8 * max(1, self.workers)))
        parts, inverse = plan_partitions(texts, min(partition_size, max(64, -(-per // 64) * 64)))
        kind, key, payload = self._model_source(classifier)
        token = uuid.uuid4().hex[:12]
        futures = [self.client.submit(_predict_part, part, (kind, key, payload), pure=False,
                                      key=f"harmscope-predict-{token}-{i}")
                   for i, part in enumerate(parts)]
        saved, self.progress = self.progress, (self.progress if progress is None else progress)
        try:
            results = self._gather(futures, "scoring")
        finally:
            self.progress = saved
        return np.concatenate(results, axis=0)[inverse]

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, **kw)

    def wait_first(self, futures: Sequence[Any]) -> tuple[set, set]:
        from distributed import wait

        with self.client.as_current():
            res = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(res.done), set(res.not_done)

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        import logging

        log = logging.getLogger("distributed")
        level = log.level
        log.setLevel(logging.ERROR)  # the cluster's shutdown chatter is not news to the user
        try:
            try:
                self.client.close(timeout=10)
            except Exception:  # noqa: BLE001 - closing must not hide a result
                pass
            if self.cluster is not None:
                try:
                    self.cluster.close(timeout=20)
                except Exception:  # noqa: BLE001
                    pass
        finally:
            log.setLevel(level)

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_workers(engine: DaskEngine, n: int, timeout: float = 60.0) -> None:
    """Block until the cluster has ``n`` workers (after a restart)."""
    t0 = time.monotonic()
    while engine.workers < n:
        if time.monotonic() - t0 > timeout:
            raise HarmscopeError(f"Dask cluster did not reach {n} workers in {timeout:g}s")
        time.sleep(0.1)
