import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared public datasets (``$HARMSCOPE_DATA`` or ../shared/data); skip if absent."""
    from harmscope.paths import data_dir as _d

    d = _d()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d}")
    return d
