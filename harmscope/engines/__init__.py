"""Execution engines (local, Dask): see :mod:`harmscope.engines.base`."""

from harmscope.engines.base import *  # noqa: F403 - transitional re-export during the move
from harmscope.engines.base import (  # noqa: F401
    CONNECT_TIMEOUT_S,
    ENV_VAR,
    _texts,
    engine_option,
    is_local,
    progress_bar,
    replica_batch,
    resolve_engine,
)
