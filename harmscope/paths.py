"""Where harmscope finds shared data and keeps its workspace."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Public datasets folder: ``$HARMSCOPE_DATA`` or ``../shared/data`` beside the project."""
    env = os.environ.get("HARMSCOPE_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1]
    return here.parent / "shared" / "data"


def workspace_dir() -> Path:
    """Default workspace (SQLite store, caches): ``$HARMSCOPE_HOME`` or ``./.harmscope``."""
    return Path(os.environ.get("HARMSCOPE_HOME", ".harmscope"))
