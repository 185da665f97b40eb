"""Worker-side helpers for any engine: a per-process object cache and shipped folders.

A task that needs something expensive (a model loaded from a folder) asks for it with
:func:`worker_cached` so each worker process builds it once; a folder the client made visible with
``engine.ship_folder(path)`` is turned back into a local path with :func:`worker_folder`. Nothing
here knows what the objects or folders are.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["folder_fingerprint", "load_counts", "sees_file", "worker_cached", "worker_folder"]

_CACHE: dict[str, Any] = {}
_LOADS: Counter = Counter()  # builds per key in this process (tests check "once per worker")
_LOCK = threading.Lock()


def worker_cached(key: str, build: Callable[[], Any]) -> Any:
    """``build()`` once per process for ``key``; later calls return the same object."""
    with _LOCK:
        obj = _CACHE.get(key)
        if obj is None:
            obj = _CACHE[key] = build()
            _LOADS[key] += 1
    return obj


def load_counts() -> dict[str, int]:
    """How often each key was built in this process."""
    return dict(_LOADS)


def _materialise(key: str, files: dict[str, bytes]) -> Path:
    """Write a shipped folder under the worker's temp dir (once per content key)."""
    root = Path(tempfile.gettempdir()) / "harmscope-shipped" / key
    done = root / ".complete"
    if not done.is_file():
        tmp = root.with_name(f"{key}.{os.getpid()}.tmp")
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, root)
        except OSError:  # another process won the race
            pass
        (root / ".complete").touch()
    return root


def worker_folder(ref: tuple[str, str, Any]) -> Path:
    """The local path of a folder shipped with ``engine.ship_folder`` (written out once if sent as bytes)."""
    kind, key, payload = ref
    if kind == "bytes":
        return _materialise(key, payload)
    return Path(payload)


def sees_file(path: str, digest: str) -> bool:
    """True when ``path`` exists here with this sha256 (does a worker share the client's filesystem?)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    except OSError:
        return False


def folder_fingerprint(d: Path) -> str:
    """A cheap fingerprint of a folder: relative names, sizes and modification times."""
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(d)}\x1f{st.st_size}\x1f{st.st_mtime_ns}\x1e".encode())
    return h.hexdigest()[:24]
