"""Chunked, seeded bootstrap helpers shared by the fairness metrics.

A bootstrap of ``n_boot`` resamples is cut into chunks of a fixed size (``CHUNK_SIZE``). Chunk ``i``
draws its resamples from ``np.random.SeedSequence(seed).spawn(n_chunks)[i]``, so the result
depends only on ``(seed, n_boot, chunk_size)``, never on which worker runs which chunk. A
distributed engine (e.g. Dask) maps a chunk function over :func:`bootstrap_chunks` and
concatenates the outputs in chunk order to get exactly the serial result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_SIZE = 50


@dataclass(frozen=True)
class BootChunk:
    """One chunk of bootstrap resamples: its position, size and own seed."""

    index: int
    size: int
    seed_seq: np.random.SeedSequence

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed_seq)


def bootstrap_chunks(n_boot: int, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> list[BootChunk]:
    """Split ``n_boot`` resamples into chunks with per-chunk seeds spawned from ``seed``."""
    if n_boot < 0:
        raise ValueError("n_boot must be >= 0")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    n_chunks = -(-n_boot // chunk_size)
    seqs = np.random.SeedSequence(seed).spawn(n_chunks)
    return [BootChunk(i, min(chunk_size, n_boot - i * chunk_size), seqs[i]) for i in range(n_chunks)]


def resample_counts(n: int, chunk: BootChunk) -> np.ndarray:
    """Bootstrap weights for one chunk: a ``(chunk.size, n)`` float array of draw counts.

    Row ``b`` counts how often each of the ``n`` rows was drawn in resample ``b`` (drawing ``n``
    indices with replacement). Weighted statistics with these counts equal the statistics of
    the resampled rows.
    """
    if n == 0 or chunk.size == 0:
        return np.zeros((chunk.size, n))
    rng = chunk.rng()
    out = np.empty((chunk.size, n))
    for b in range(chunk.size):
        out[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap ``samples`` along ``axis``, ignoring undefined (NaN) draws."""
    samples = np.asarray(samples, dtype=float)
    a = (1.0 - level) / 2.0
    if samples.shape[axis] == 0:
        shape = samples.shape[:axis] + samples.shape[axis + 1 :]
        nan = np.full(shape, np.nan)
        return nan, nan.copy()
    with np.errstate(all="ignore"), _quiet():
        lo = np.nanquantile(samples, a, axis=axis)
        hi = np.nanquantile(samples, 1.0 - a, axis=axis)
    return lo, hi


class _quiet:
    """Silence the 'All-NaN slice' RuntimeWarning of nanquantile."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def basic_ci(
    point: float | np.ndarray,
    samples: np.ndarray,
    level: float = 0.95,
    axis: int = 0,
    floor: float | None = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Basic (reverse-percentile) interval ``[2t - q_hi, 2t - q_lo]``, clipped below at ``floor``.

    Used for gap statistics (max - min over groups, spreads): resampling inflates them, so the
    plain percentile interval sits above the estimate; the basic interval corrects that shift.
    """
    lo_q, hi_q = percentile_ci(samples, level, axis)
    lo, hi = 2 * np.asarray(point) - hi_q, 2 * np.asarray(point) - lo_q
    if floor is not None:
        lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
    return lo, hi
