"""Probe generation, the run engine, scoring and statistics.

Public names are imported lazily so that ``import harmscope.benchmarks`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate": "harmscope.benchmarks.probes",
    "read_probes": "harmscope.benchmarks.probes",
    "write_probes": "harmscope.benchmarks.probes",
    "probe_stats": "harmscope.benchmarks.probes",
    "TRANSFORMS": "harmscope.benchmarks.transforms",
    "PRESETS": "harmscope.benchmarks.presets",
    "run_probes": "harmscope.benchmarks.engine",
    "score_run": "harmscope.benchmarks.scoring",
    "compare_results": "harmscope.benchmarks.scoring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harmscope.benchmarks' has no attribute {name!r}")
