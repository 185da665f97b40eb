"""Shared click parameter types that reject hostile values with one ``error:`` line (exit 2)."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.ParamType):
    """A finite float (no nan/inf), optionally within ``[lo, hi]``."""

    name = "number"

    def __init__(self, lo: float | None = None, hi: float | None = None, *, positive: bool = False):
        self.lo, self.hi, self.positive = lo, hi, positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.positive and v <= 0:
            self.fail(f"{v:g} must be > 0", param, ctx)
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            self.fail(f"{v:g} is not in [{self.lo:g}, {self.hi:g}]" if self.lo is not None and self.hi is not None
                      else f"{v:g} is out of range", param, ctx)
        return v
