"""Fairness metrics with their bootstrap run on an execution engine (local or Dask).

The bootstrap chunks carry their own seeds (:func:`harmscope.fairness.bootstrap.bootstrap_chunks`),
so the result is the same, bit for bit, on any engine and any number of workers.
"""

from __future__ import annotations

from typing import Any

from harmscope.engines import is_local, resolve_engine
from harmscope.fairness.jigsaw import BiasReport
from harmscope.fairness.jigsaw import bias_metrics as _bias_metrics

__all__ = ["bias_metrics"]


def bias_metrics(y_true: Any, y_score: Any, groups: Any, *args: Any, engine: str | Any | None = None,
                 **kw: Any) -> BiasReport:
    """:func:`harmscope.fairness.bias_metrics` with its bootstrap chunks run on ``engine``.

    Other arguments (the settings, single-field overrides) go to it unchanged. Identical (same
    CIs, bit for bit) to the local call for the same ``seed`` and ``chunk_size``.
    """
    eng, owned = resolve_engine(engine)
    try:
        mapper = None if is_local(eng) else (lambda fn, chunks: eng.map(fn, chunks, label="bootstrap"))
        return _bias_metrics(y_true, y_score, groups, *args, map_chunks=mapper, **kw)
    finally:
        if owned:
            eng.close()
