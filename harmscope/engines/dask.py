"""The Dask engine: a LocalCluster it owns or a remote scheduler, with progress from the cluster.

Registered lazily in :data:`harmscope.engines.ENGINES` and imported only when a ``dask`` spec is
asked for; Dask itself is imported inside the methods that need it. Task bodies are pickled by
reference, so workers keep the per-process cache of :mod:`harmscope.engines.workers` between tasks.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from harmscope.engines.workers import folder_fingerprint, load_counts, sees_file
from harmscope.errors import HarmscopeError
from harmscope.progress import progress_bar

SHIP_LIMIT_BYTES = 2 * 1024**3  # folders up to this size may be sent to workers as bytes
CONNECT_TIMEOUT_S = 5.0
_REMOTE_RE = re.compile(r"^//(?P<host>[^:/\s]+):(?P<port>\d{1,5})/?$")


def _call(item: Any, fn: Callable[[Any], Any]) -> Any:
    """Task body of :meth:`DaskEngine.map`: ``fn`` arrives once per worker as scattered data."""
    return fn(item)


class DaskEngine:
    """An engine backed by a ``distributed.Client`` (a LocalCluster it owns, or a remote scheduler)."""

    name = "dask"
    version = "1"
    description = "Dask: a LocalCluster of worker processes or a remote scheduler"
    syntax = "dask, dask:N or dask://HOST:PORT"

    def __init__(self, client: Any, cluster: Any = None, *, spec: str = "dask", progress: bool | None = None):
        self.client = client
        self.cluster = cluster
        self.spec = spec
        self.progress = progress
        self.closed = False

    # ------------------------------------------------------------------ specs
    @staticmethod
    def parse_arg(rest: str | None, spec: str) -> int | str | None:
        """``None`` (one worker per core), ``N`` workers, or ``"tcp://HOST:PORT"`` of a scheduler."""
        if rest is None:
            return None
        m = _REMOTE_RE.match(rest)
        if m:
            port = int(m.group("port"))
            if not 0 < port < 65536:
                raise HarmscopeError(f"bad engine spec {spec!r}: port must be 1-65535")
            return f"tcp://{m.group('host')}:{port}"
        if rest.startswith("//"):
            raise HarmscopeError(f"bad engine spec {spec!r}: expected dask://HOST:PORT")
        if not rest.isdigit() or int(rest) < 1:
            raise HarmscopeError(f"bad engine spec {spec!r}: the worker count in dask:N must be a whole number >= 1")
        return int(rest)

    @classmethod
    def from_spec(cls, arg: int | str | None = None, **kw: Any) -> DaskEngine:
        try:
            import distributed  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise HarmscopeError(f"the dask engine needs dask: pip install 'dask[distributed]' ({exc})") from None
        if isinstance(arg, str):
            return cls.connect(arg, **kw)
        return cls.local_cluster(arg, **kw)

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

    def cache_loads(self) -> dict[str, dict[str, int]]:
        """Per worker: how often each ``worker_cached`` key was built in that process."""
        return self.client.run(load_counts)

    def __repr__(self) -> str:
        return f"DaskEngine({self.spec!r})"

    # ------------------------------------------------------------------ work
    def gather(self, futures: Sequence[Any], *, label: str = "tasks", progress: bool | None = None) -> list:
        """Results in input order, advancing a progress bar as futures complete."""
        from distributed import as_completed

        enabled = self.progress if progress is None else progress
        with progress_bar(len(futures), label, enabled=enabled, fields={"workers": self.workers}) as bar:
            if bar.enabled:
                for _ in as_completed(futures):
                    bar.advance()
            return self.client.gather(list(futures))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None,
            progress: bool | None = None) -> list:
        items = list(items)
        if not items:
            return []
        token = uuid.uuid4().hex[:12]
        fn_future = self.client.scatter(fn, broadcast=True, hash=False)
        try:
            futures = self.client.map(_call, items, fn=fn_future, pure=False,
                                      key=[f"harmscope-{label or 'map'}-{token}-{i}" for i in range(len(items))])
            return self.gather(futures, label=label or "map", progress=progress)
        finally:
            del fn_future

    def ship_folder(self, path: Path, *, marker: str) -> tuple[str, str, Any]:
        """``("path", key, path)`` when every worker sees the folder (same ``marker`` file contents),
        else ``("bytes", key, {relative path: bytes})``; the ref travels inside the task function."""
        p = Path(path).expanduser().resolve()
        fp = folder_fingerprint(p)
        if self.cluster is not None:  # our own LocalCluster shares this filesystem
            return "path", f"path:{p}:{fp}", str(p)
        digest = hashlib.sha256((p / marker).read_bytes()).hexdigest()
        seen = self.client.run(sees_file, str(p / marker), digest)
        if seen and all(seen.values()):
            return "path", f"path:{p}:{fp}", str(p)
        files = {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
        size = sum(map(len, files.values()))
        if size > SHIP_LIMIT_BYTES:
            raise HarmscopeError(f"{p}: the workers cannot see this folder and it is too large to send "
                                 f"({size / 1e9:.1f} GB); put it on a filesystem the workers share")
        return "bytes", fp, files

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
