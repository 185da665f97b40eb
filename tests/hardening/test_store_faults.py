"""Class 8: a corrupt, locked or full store gives one line, keeps committed and in-flight replies."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import pytest

from harmscope.benchmarks.runs.store import Store, StoreError
from tests.hardening.conftest import cli, one_error
from tests.hardening.hostile_server import HostileServer


def _run(srv, probes_file, out: Path, *extra: str):
    return cli(["run", "--model", f"openai:m@{srv.url}", "--probes", str(probes_file), "--out", str(out),
                "--max-retries", "0", *extra])


def test_corrupt_store_is_one_line_in_runs_list_and_run(probes_file, tmp_path):
    with HostileServer("ok") as srv:
        assert _run(srv, probes_file, tmp_path / "run").exit_code == 0
    db = tmp_path / "harmscope.sqlite"
    gc.collect()  # drop the in-process run's connection
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    assert len(data) >= 3 * page
    for start in range(page, len(data), page):  # scribble over every b-tree page header but page 1
        data[start:start + 12] = b"\xa5" * 12
    db.write_bytes(bytes(data))
    for args in (["runs", "list", str(db)], ["runs", "show", str(tmp_path / "run")]):
        r = cli(args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr, r.exception)
        line = one_error(r)
        assert "harmscope.sqlite" in line


def test_locked_store_is_one_line_and_fast(probes_file, tmp_path):
    db = tmp_path / "harmscope.sqlite"
    Store(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with HostileServer("ok") as srv:
            r = _run(srv, probes_file, tmp_path / "run")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.exit_code == 2
    line = one_error(r)
    assert "harmscope.sqlite" in line and "locked by another process" in line


def test_disk_full_mid_run_keeps_committed_and_in_flight_replies(probes_file, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = Store.put_replies

    def flaky(self, run_id, items):
        calls["n"] += 1
        if calls["n"] > 1:
            raise StoreError(f"{self.path}: run store disk full or I/O error; free space and run again")
        return real(self, run_id, items)  # the first write commits

    monkeypatch.setattr(Store, "put_replies", flaky)
    with HostileServer("ok") as srv:
        r = _run(srv, probes_file, tmp_path / "run", "--concurrency", "1")
        assert r.exit_code == 2
        line = one_error(r)
        assert "disk full" in line and "unsaved-replies.jsonl" in line
        monkeypatch.setattr(Store, "put_replies", real)
        before = srv.requests
        r2 = _run(srv, probes_file, tmp_path / "run", "--no-preflight")
        assert r2.exit_code == 0, r2.stderr
        # the kept (in-flight) replies were restored: only the never-asked probe is asked
        assert srv.requests - before == 1
    assert not (tmp_path / "run" / "unsaved-replies.jsonl").exists()
    s = Store(tmp_path / "harmscope.sqlite")
    assert sum(r.ok for r in s.replies(s.list_runs().run_id[0])) == 4


def test_store_errors_are_store_errors(tmp_path):
    p = tmp_path / "x.sqlite"
    p.write_bytes(b"this is not a database" * 300)
    with pytest.raises(Exception) as ei:
        Store(p)
    assert "x.sqlite" in str(ei.value)
