"""The settings of a bias measurement, given once.

In the spirit of fairlearn's ``MetricFrame`` (metrics, features and ``random_state`` passed once),
:class:`BiasSettings` carries the label and group thresholds, the decision threshold, the bootstrap
size, seed, interval level and chunking, and the minimum group size. :func:`~harmscope.fairness.bias_metrics`,
:func:`~harmscope.fairness.audit` and the counterfactual report take one ``BiasSettings`` (or the
same names as keyword overrides) instead of threading each value through every call.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from harmscope.fairness.bootstrap import CHUNK_SIZE, BootChunk, bootstrap_chunks

POWER = -5.0
DEFAULT_MIN_SIZE = 30
DEFAULT_DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class BiasSettings:
    """Thresholds, bootstrap size and seed of one bias measurement (validated once, immutable).

    ``label_threshold``: a label (or toxicity fraction) ``>=`` it is toxic; ``group_threshold``: an
    identity value ``>`` it makes the row a member; ``threshold``: the classifier's decision
    threshold (``None``: no rate metrics); ``min_size``: smaller groups are listed but not scored;
    ``n_boot`` resamples in chunks of ``chunk_size`` seeded from ``seed``; ``level``: interval
    coverage; ``power``: the power mean's exponent in the final bias score.
    """

    label_threshold: float = 0.5
    group_threshold: float = 0.5
    n_boot: int = 1000
    seed: int = 0
    min_size: int = DEFAULT_MIN_SIZE
    threshold: float | None = None
    level: float = 0.95
    power: float = POWER
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self) -> None:
        if self.n_boot < 0:
            raise ValueError("n_boot must be >= 0")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.min_size < 0:
            raise ValueError("min_size must be >= 0")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        for name in ("label_threshold", "group_threshold", "threshold", "power"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")

    @classmethod
    def of(cls, settings: BiasSettings | None = None, **overrides: Any) -> BiasSettings:
        """``settings`` (default: the defaults) with ``overrides`` applied; an unknown name is a TypeError."""
        base = settings if settings is not None else cls()
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown bias setting(s): {', '.join(unknown)}")
        return dataclasses.replace(base, **overrides) if overrides else base

    def replace(self, **changes: Any) -> BiasSettings:
        """A copy with ``changes``."""
        return BiasSettings.of(self, **changes)

    @property
    def decision_threshold(self) -> float:
        """The decision threshold, 0.5 when none was set."""
        return DEFAULT_DECISION_THRESHOLD if self.threshold is None else self.threshold

    def chunks(self) -> list[BootChunk]:
        """The bootstrap chunks of this measurement (:func:`~harmscope.fairness.bootstrap.bootstrap_chunks`)."""
        return bootstrap_chunks(self.n_boot, self.seed, self.chunk_size)

    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (stored in reports)."""
        return dataclasses.asdict(self)
