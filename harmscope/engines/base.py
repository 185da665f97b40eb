"""Execution engines for bulk work: the protocol, the in-process default, spec parsing and the
process-wide current engine.

An engine maps a function over items and returns the results in input order::

    from harmscope.engines import engine_scope

    with engine_scope("dask:2") as eng:          # or "local", "dask", "dask://host:8786"
        squares = eng.map(square, range(100))

Engines know nothing about what they run: classifier scoring
(:mod:`harmscope.classifiers.partitioned`), the fairness bootstrap
(:mod:`harmscope.fairness.parallel`) and replicated runs (:mod:`harmscope.benchmarks.runs.replicas`)
are built on :meth:`Engine.map` / :meth:`Engine.submit` and the worker helpers in
:mod:`harmscope.engines.workers`.

Specs are ``NAME`` or ``NAME:ARG``; ``NAME`` is looked up in :data:`ENGINES` (``local`` here, ``dask``
registered lazily so Dask is imported only when asked for): ``local`` (plain loop, the default),
``dask`` (a LocalCluster with one single-threaded worker process per core), ``dask:N`` (N worker
processes), ``dask://HOST:PORT`` (an existing scheduler). :func:`current_engine` reads
``$HARMSCOPE_ENGINE`` (set by ``harmscope --engine ...``) and keeps one engine per spec for the life
of the process.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harmscope.engines.workers import folder_fingerprint
from harmscope.errors import HarmscopeError
from harmscope.registry import Registry

__all__ = [
    "ENGINES", "ENV_VAR", "Engine", "FolderRef", "LocalEngine", "bootstrap_map", "chunk_mapper", "current_engine",
    "engine_scope", "get_engine", "is_local", "parse_spec", "resolve_engine",
]

ENV_VAR = "HARMSCOPE_ENGINE"

#: Engines by spec name; each class declares ``name``, ``version``, ``description`` and ``syntax``
#: and offers ``parse_arg(rest, spec)`` (the text after ``NAME:``) and ``from_spec(arg, **kw)``.
ENGINES = Registry("engine", meta_attrs=("syntax",))

#: A folder made visible to workers: ``(kind, key, payload)``; kind ``path`` (payload: a path the
#: workers see) or ``bytes`` (payload: ``{relative path: bytes}``); see :mod:`harmscope.engines.workers`.
FolderRef = tuple[str, str, Any]


@runtime_checkable
class Engine(Protocol):
    """What every engine offers. ``map`` keeps input order; ``close`` is idempotent."""

    name: str

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None,
            progress: bool | None = None) -> list:
        """``[fn(x) for x in items]``; ``fn`` (with the data it closes over) reaches each worker once."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Start ``fn(*args, **kw)``; a future with ``result()`` and ``cancel()``."""
        ...

    def wait_first(self, futures: Sequence[Any]) -> tuple[set, set]:
        """``(done, pending)`` as soon as at least one future is done."""
        ...

    def ship_folder(self, path: Path, *, marker: str) -> FolderRef:
        """Make a folder readable by every worker (sent as bytes when they cannot see it)."""
        ...

    def close(self) -> None: ...


@ENGINES.register
class LocalEngine:
    """The default: a plain in-process loop, no threads, no copies, no overhead.

    ``submit``/``wait_first`` (used by replicated runs) run tasks on a small thread pool.
    """

    name = "local"
    version = "1"
    description = "a plain in-process loop (the default)"
    syntax = "local"
    workers = 1

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    @staticmethod
    def parse_arg(rest: str | None, spec: str) -> None:
        if rest is not None:
            raise HarmscopeError(f"bad engine spec {spec!r}: 'local' takes no argument")
        return None

    @classmethod
    def from_spec(cls, arg: None = None, **kw: Any) -> LocalEngine:
        return cls()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, label: str | None = None,
            progress: bool | None = None) -> list:
        return [fn(x) for x in items]

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="harmscope-local")
        return self._pool.submit(fn, *args, **kw)

    @staticmethod
    def wait_first(futures: Sequence[Future]) -> tuple[set, set]:
        done, pending = wait(futures, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    @staticmethod
    def ship_folder(path: Path, *, marker: str) -> FolderRef:
        p = Path(path).resolve()
        return "path", f"path:{p}:{folder_fingerprint(p)}", str(p)

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


ENGINES.register_lazy("dask", "harmscope.engines.dask:DaskEngine", version="1",
                      description="Dask: a LocalCluster of worker processes or a remote scheduler",
                      syntax="dask, dask:N or dask://HOST:PORT")


def parse_spec(spec: str | None) -> tuple[str, Any]:
    """``(name, arg)`` for an engine spec: ``("local", None)``, ``("dask", None)``, ``("dask", N)`` or
    ``("dask", "tcp://HOST:PORT")``; a bad spec raises one line."""
    s = (spec or "local").strip()
    name, sep, rest = s.partition(":")
    name = name.lower()
    if not name or name not in ENGINES:
        known = ", ".join(str(e.meta.get("syntax") or e.name) for e in ENGINES)
        raise HarmscopeError(f"bad engine spec {s!r}: expected {known}")
    return name, ENGINES.get(name).obj.parse_arg(rest if sep else None, s)


def get_engine(spec: str | None = None, **kw: Any) -> Any:
    """A new engine for ``spec`` (default ``local``). The caller closes it (or use :func:`engine_scope`).

    Keywords go to the engine's ``from_spec`` (for Dask: ``connect_timeout``, ``dashboard``, ...).
    """
    name, arg = parse_spec(spec)
    return ENGINES.get(name).obj.from_spec(arg, **kw)


_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()
_OVERRIDE: list[Any] = []  # engines made current by engine_scope (innermost last)
_LOCAL = LocalEngine()


def current_engine() -> Any:
    """The engine in force: the innermost :func:`engine_scope`, else ``$HARMSCOPE_ENGINE`` (default
    local). Engines made from the environment are shared for the life of the process."""
    if _OVERRIDE:
        return _OVERRIDE[-1]
    spec = os.environ.get(ENV_VAR) or "local"
    name, arg = parse_spec(spec)
    if name == LocalEngine.name:
        return _LOCAL
    key = f"{name}:{arg}"
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
        name, _ = parse_spec(engine)
        if name == LocalEngine.name:
            return _LOCAL, False
        return get_engine(engine), True
    return engine, False


def is_local(engine: Any) -> bool:
    """True for the in-process engine (callers then skip partitioning and shipping)."""
    return getattr(engine, "name", "local") == LocalEngine.name


# ---------------------------------------------------------------------- chunked maps
def bootstrap_map(chunk_fn: Callable[[Any], Any], chunks: Sequence[Any], engine: str | Any | None = None) -> list:
    """``[chunk_fn(c) for c in chunks]`` on ``engine``, in chunk order.

    When the chunks carry their own seeds (as ``harmscope.fairness.bootstrap.bootstrap_chunks``
    makes them), the result does not depend on the number of workers. On Dask, ``chunk_fn`` (with
    the data it closes over) is sent to each worker once, not once per chunk.
    """
    eng, owned = resolve_engine(engine)
    try:
        return eng.map(chunk_fn, list(chunks), label="bootstrap")
    finally:
        if owned:
            eng.close()


def chunk_mapper(engine: str | Any | None = None) -> Callable[[Callable, list], list] | None:
    """A ``map_chunks(fn, chunks)`` callable that runs on ``engine``; None on the local engine
    (so the caller keeps its own serial loop)."""
    eng, owned = resolve_engine(engine)
    if is_local(eng):
        return None
    if owned:  # keep it alive as long as the process: the caller cannot close what it never sees
        _SHARED[f"owned:{id(eng)}"] = eng

    def mapper(fn: Callable, chunks: list) -> list:
        return eng.map(fn, chunks, label="bootstrap")

    return mapper
