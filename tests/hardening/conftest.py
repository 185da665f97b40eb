"""Shared fixtures of the hardening tests: a probe file, a CLI runner that keeps stderr apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harmscope import secrets


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HARMSCOPE_STORE", "HARMSCOPE_TRUST_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI", "1")  # no progress bars
    monkeypatch.setenv("HARMSCOPE_STORE_BUSY_TIMEOUT", "0.5")
    secrets.forget_all()
    from harmscope import safeio

    safeio._saved.clear()


def write_probe_file(path: Path, n: int) -> Path:
    """A valid probe file of ``n`` distinct probes."""
    from harmscope.benchmarks.probes import generate as probes_mod
    from harmscope.models.testing import make_probe

    ps = probes_mod.make_probe_set([make_probe(f"question number {i} about topic {i}") for i in range(n)],
                                   catalog_version="test", seed=0, params={})
    return probes_mod.write_probes(ps, path)


@pytest.fixture
def probes_file(tmp_path: Path) -> Path:
    return write_probe_file(tmp_path / "probes.jsonl", 4)


def cli(args: list[str], env: dict[str, str] | None = None):
    """Run ``harmscope ARGS`` in-process; returns the click Result (stdout and stderr apart)."""
    from harmscope.cli import main

    runner = CliRunner()
    return runner.invoke(main, args, env=env, catch_exceptions=True)


def one_error(result) -> str:
    """Assert exactly one ``error:`` line on stderr and no traceback; return it."""
    err = result.stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in err + result.stdout, err
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1, err
    return lines[0]


def all_bytes(folder: Path) -> bytes:
    """Every byte of every file under ``folder`` (store, WAL, run folders...)."""
    out = b""
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            out += p.read_bytes()
    return out


os.environ.setdefault("HARMSCOPE_TORCH_THREADS", "1")
