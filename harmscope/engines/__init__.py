"""Execution engines for bulk work: generic ``map``/``submit`` over local or Dask workers.

Engines are looked up in :data:`ENGINES` by spec (``local``, ``dask``, ``dask:N``,
``dask://HOST:PORT``); Dask is registered lazily and imported only when used. Engines know nothing
of what they run: classifier scoring lives in :mod:`harmscope.classifiers.partitioned`, the
fairness bootstrap in :mod:`harmscope.fairness.parallel`, replicated runs in
:mod:`harmscope.benchmarks.runs.replicas`.
"""

from harmscope.engines.base import (
    ENGINES,
    ENV_VAR,
    Engine,
    FolderRef,
    LocalEngine,
    bootstrap_map,
    chunk_mapper,
    current_engine,
    engine_scope,
    get_engine,
    is_local,
    parse_spec,
    resolve_engine,
)
from harmscope.engines.options import engine_option
from harmscope.engines.workers import load_counts, worker_cached, worker_folder

__all__ = [
    "ENGINES", "ENV_VAR", "Engine", "FolderRef", "LocalEngine", "bootstrap_map", "chunk_mapper", "current_engine",
    "engine_option", "engine_scope", "get_engine", "is_local", "load_counts", "parse_spec", "resolve_engine",
    "worker_cached", "worker_folder",
]
