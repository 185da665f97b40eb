"""One place that sets torch's CPU thread count for every neural part of harmscope.

Measured on the 2-core machines this project targets: with other work on the box, torch's
default (one OpenMP thread per core) made batched SmolLM2 generation 20x slower and MiniLM
encoding 2x slower than a single thread, because spinning threads fight for the cores. So the
default is 1 thread; set ``HARMSCOPE_TORCH_THREADS`` (an integer, or ``auto`` for torch's own
default) on a quiet or larger machine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_done = False
# torch CPU threads of everything that feeds training (judge features, cross-encoder states and
# steps): the same count everywhere gives the same floats, hence the same weights, on the same
# kind of CPU with the same package versions (kernels may differ between instruction sets).
TRAIN_THREADS = 2


def configure_threads(threads: int | None = None) -> None:
    """Apply ``threads`` (or ``$HARMSCOPE_TORCH_THREADS``, default 1) once per process."""
    global _done
    import torch

    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
        _done = True
        return
    if _done:
        return
    _done = True
    value = os.environ.get("HARMSCOPE_TORCH_THREADS", "1").strip().lower()
    if value == "auto":
        return
    try:
        torch.set_num_threads(max(1, int(value)))
    except ValueError:
        torch.set_num_threads(1)


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run the block on exactly ``threads`` torch CPU threads (restored after).

    torch's CPU kernels give other last float bits with another thread count (measured on MiniLM:
    one text at one vs two threads differ by up to 2e-7), so everything that feeds training (judge
    features, cross-encoder states and steps) runs pinned, and a rebuild gives the same weights
    whatever ``$HARMSCOPE_TORCH_THREADS`` says."""
    import torch

    configure_threads()
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)
