"""The one progress bar of harmscope: rich, on stderr, and a silent no-op when disabled.

Every long loop (probe generation, a run, replica batches, Dask tasks) uses :func:`progress_bar`::

    with progress_bar(total=len(jobs), label="run 1a2b3c4d", fields={"failed": 0}, rate=True) as bar:
        for job in jobs:
            ...
            bar.advance(failed=n_failed)

``enabled=None`` means "when stderr is a terminal"; ``--quiet`` / ``--no-progress`` pass False.
A disabled bar accepts the same calls and draws nothing, so callers never test for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar:
    """One task on a rich progress bar; every method is a no-op when the bar is disabled."""

    def __init__(self, label: str, total: int | None = None, *, enabled: bool | None = None,
                 completed: int = 0, fields: Mapping[str, Any] | None = None, rate: bool = False,
                 eta: bool = False, transient: bool = False, label_column: str | None = None):
        self.bar: Any = None
        self._n = 0
        self._t0 = time.monotonic()
        self._rate = rate
        fields = dict(fields or {})
        if enabled is False:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if enabled is None and not console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        cols: list[Any] = [TextColumn(label_column or "[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
        if rate:
            cols.append(TextColumn("{task.fields[rate]}"))
            fields.setdefault("rate", "")
        cols += [TextColumn(f"{k} {{task.fields[{k}]}}") for k in fields if k != "rate"]
        cols.append(TimeElapsedColumn())
        if eta:
            cols += [TextColumn("ETA"), TimeRemainingColumn()]
        self.bar = Progress(*cols, console=console, transient=transient, refresh_per_second=4)
        self.task = self.bar.add_task(label, total=total, completed=completed, **fields)
        self.bar.start()

    @property
    def enabled(self) -> bool:
        return self.bar is not None

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Advance by ``n`` and set any extra fields (e.g. ``failed=3``); the rate is kept if shown."""
        if self.bar is None:
            return
        self._n += n
        if self._rate:
            fields["rate"] = f"{self._n / max(time.monotonic() - self._t0, 1e-6):.1f}/s"
        self.bar.update(self.task, advance=n, **fields)

    def update(self, *, completed: int | None = None, total: int | None = None, **fields: Any) -> None:
        """Set the position and/or the total (for loops that learn their size late)."""
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, total=total, **fields)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def progress_bar(total: int | None, label: str, *, enabled: bool | None = None, **kw: Any) -> ProgressBar:
    """A started :class:`ProgressBar` (disabled when ``enabled`` is False, stderr is not a terminal
    and ``enabled`` is None, or there is nothing to do: ``total == 0``)."""
    if total is not None and total <= 0:
        enabled = False
    return ProgressBar(label, total, enabled=enabled, **kw)
