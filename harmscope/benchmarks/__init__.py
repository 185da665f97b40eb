"""Probe generation, the run engine, scoring and statistics.

Public names are imported lazily so that ``import harmscope.benchmarks`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate": "harmscope.benchmarks.probes.generate",
    "read_probes": "harmscope.benchmarks.probes.generate",
    "write_probes": "harmscope.benchmarks.probes.generate",
    "probe_stats": "harmscope.benchmarks.probes.generate",
    "TRANSFORMS": "harmscope.benchmarks.probes.transforms",
    "PRESETS": "harmscope.benchmarks.probes.presets",
    "run_probes": "harmscope.benchmarks.runs.engine",
    "score_run": "harmscope.benchmarks.scoring.judging",
    "compare_results": "harmscope.benchmarks.scoring.compare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harmscope.benchmarks' has no attribute {name!r}")
