"""Safe output: atomic writes of files and folders, and output paths checked before work starts.

Every output is written to a temporary name in the same folder and renamed over the target
only when complete, so a full disk, a crash or Ctrl-C leaves the previous version in place.
A failed write raises one :class:`~harmscope.errors.HarmscopeError` line ("disk full writing X;
previous version kept"). :func:`jsonl_records` is the strict JSONL line reader that probe
importers, dataset readers and judge-label readers share; :func:`jsonable` makes result values
(numpy scalars, NaN) writable as strict JSON.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harmscope.errors import HarmscopeError, InputError

_saved: list[str] = []


def note_saved(what: str | Path) -> None:
    """Record that ``what`` (a file, a folder, "N replies in STORE") is safely on disk."""
    _saved.append(str(what))


def saved() -> list[str]:
    """What this process has safely written so far (for an honest interrupt message)."""
    return list(_saved)


def interrupt_message() -> str:
    """The line printed after Ctrl-C: what was kept, or that nothing was."""
    if not _saved:
        return "interrupted: nothing was saved (outputs are written only when complete)"
    shown = ", ".join(dict.fromkeys(_saved[-3:]))
    more = f" and {len(_saved) - 3} more" if len(_saved) > 3 else ""
    return f"interrupted: kept {shown}{more}; unfinished outputs were not written"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "disk full"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only?)"
    return exc.strerror or type(exc).__name__


def write_error(path: Path | str, exc: OSError, kept: bool) -> HarmscopeError:
    """The one-line error for a failed write of ``path``."""
    tail = "previous version kept" if kept else "nothing written"
    return HarmscopeError(f"{_reason(exc)} writing {path}; {tail}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    Use it for writers that take a path (``df.to_parquet(tmp)``, a PDF renderer). On any
    failure the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(path, exc, path.exists()) from None
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        note_saved(path)
    except OSError as exc:
        _unlink(tmp)
        raise write_error(path, exc, path.exists()) from None
    except BaseException:
        _unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    A model folder is written whole into the temporary folder; only then is the old folder
    moved aside and the new one renamed into place. On failure the old folder is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise write_error(path, exc, path.exists()) from None
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:
                os.replace(old, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        note_saved(path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(path, exc, path.exists()) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync(p: Path) -> None:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()


def _probe_writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder``, else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".harmscope-write-test.", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return _reason(exc)
    return None


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Fail now (one line naming ``option``) if ``path`` cannot be a writable output folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise HarmscopeError(f"{option} {p}: exists and is not a folder")
    base = _nearest_existing(p.absolute())
    if not base.is_dir():
        raise HarmscopeError(f"{option} {p}: {base} is a file, not a folder")
    why = _probe_writable(base)
    if why:
        raise HarmscopeError(f"{option} {p}: cannot write in {base} ({why})")
    return p


def check_output_file(path: str | Path, option: str = "--out", suffixes: tuple[str, ...] | None = None) -> Path:
    """Fail now if ``path`` cannot be written as a file (or has an unsupported extension)."""
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise HarmscopeError(f"{option} {p}: unsupported extension {p.suffix or '(none)'!r} "
                             f"(use {', '.join(suffixes)})")
    if p.is_dir():
        raise HarmscopeError(f"{option} {p}: is a folder, expected a file")
    check_output_dir(p.parent if str(p.parent) else Path("."), option)
    return p


def jsonl_records(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of JSONL ``text`` read from ``path``;
    a line that is not a JSON object raises ``InputError`` naming the file and line."""
    out: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {i}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise InputError(f"{path}: line {i}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {i}: expected a JSON object")
        out.append((i, obj))
    return out


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars made plain, tuples made lists, dict keys made strings and every
    non-finite float (NaN, inf) or pandas missing value made ``None``: safe for ``allow_nan=False``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool):
        return obj
    if type(obj).__module__ == "numpy":
        obj = obj.item() if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0 else obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if type(obj).__name__ in ("NAType", "NaTType"):  # pandas.NA / pandas.NaT, without importing pandas
        return None
    return obj


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Lay out a matplotlib figure, write it atomically as PNG to ``path`` and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path
