"""Class 9: preflight total timeout, validation, retries; all-failed runs exit non-zero."""

from __future__ import annotations

import time

import pytest

from tests.hardening.conftest import cli, one_error
from tests.hardening.hostile_server import HostileServer


def _run(srv, probes_file, tmp_path, *extra):
    return cli(["run", "--model", f"openai:m@{srv.url}", "--probes", str(probes_file), "--out",
                str(tmp_path / "run"), "--max-retries", "0", *extra])


def test_dribbling_server_cannot_hang_the_preflight(probes_file, tmp_path):
    with HostileServer("dribble") as srv:
        srv_t0 = time.monotonic()
        r = _run(srv, probes_file, tmp_path, "--timeout", "1")
        took = time.monotonic() - srv_t0
    assert r.exit_code == 2
    assert "within 1 s" in one_error(r)
    assert took < 15  # 3 tries of 1 s plus backoff, not 200 s


@pytest.mark.parametrize("mode,why", [("html", "not JSON"), ("badjson", "not JSON"), ("nochoices", "no choices")])
def test_a_200_that_is_not_a_chat_completion_fails_the_preflight(mode, why, probes_file, tmp_path):
    with HostileServer(mode) as srv:
        r = _run(srv, probes_file, tmp_path)
    assert r.exit_code == 2
    line = one_error(r)
    assert why in line and "HTTP 200" in line
    assert not (tmp_path / "run").exists()


def test_one_dropped_connection_does_not_abort_the_run(probes_file, tmp_path):
    with HostileServer("drop-first") as srv:
        r = _run(srv, probes_file, tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "4 answered" in r.stdout


def test_content_null_is_a_failure_and_all_failed_exits_non_zero(probes_file, tmp_path):
    with HostileServer("null") as srv:
        r = _run(srv, probes_file, tmp_path)
    assert r.exit_code == 1
    line = one_error(r)
    assert "all 4 replies failed" in line and "content null" in line
