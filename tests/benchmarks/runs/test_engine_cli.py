"""``harmscope run`` end to end through click."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmscope.benchmarks.runs.store import open_run
from harmscope.cli import main
from harmscope.models.testing import FakeChatServer, make_probe

probes_mod = pytest.importorskip("harmscope.benchmarks.probes.generate")


@pytest.fixture()
def probe_file(tmp_path):
    probes = [make_probe(f"tell me about item {i}") for i in range(6)]
    ps = probes_mod.make_probe_set(probes, catalog_version="test", seed=0, params={})
    path = tmp_path / "probes.jsonl"
    probes_mod.write_probes(ps, path)
    return path


def _run(args, env=None):
    return CliRunner().invoke(main, ["run", *args], env=env, catch_exceptions=False)


def test_run_then_rerun_resumes(tmp_path, probe_file, monkeypatch):
    monkeypatch.delenv("HARMSCOPE_STORE", raising=False)
    out = tmp_path / "runs" / "echo"
    res = _run(["--model", "baseline:echo", "--probes", str(probe_file), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "6 replies (6 answered, 0 already stored, 0 failed)" in res.output
    assert (tmp_path / "runs" / "harmscope.sqlite").is_file()  # default: RUN_DIR/../harmscope.sqlite
    st, run_id = open_run(out)
    assert [r.text for r in st.replies(run_id)] == [f"tell me about item {i}" for i in range(6)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and manifest["params"]["max_tokens"] == 256
    res = _run(["--model", "baseline:echo", "--probes", str(probe_file), "--out", str(out), "-q"])
    assert res.exit_code == 0 and "(0 answered, 6 already stored, 0 failed)" in res.output


def test_run_options_reach_the_server(tmp_path, probe_file):
    store = tmp_path / "custom.sqlite"
    with FakeChatServer() as srv:
        res = _run(["--model", f"openai:fake@{srv.url}", "--probes", str(probe_file), "--out", str(tmp_path / "r"),
                    "--store", str(store), "--max-tokens", "7", "--temperature", "0.5", "--seed", "9",
                    "--samples", "2", "--concurrency", "3", "--rate", "1000", "--timeout", "5", "-q"])
    assert res.exit_code == 0, res.output
    assert "12 replies (12 answered" in res.output
    st, run_id = open_run(tmp_path / "r")
    assert st.path == store
    m = st.get_run(run_id)
    assert (m.params["max_tokens"], m.params["temperature"], m.params["seed"], m.params["samples"]) == (7, 0.5, 9, 2)
    assert m.params["engine"]["concurrency"] == 3 and m.params["engine"]["rate"] == 1000


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--model", "nonsense"], "error: bad model spec 'nonsense'"),
        (["--model", "openai:m@http://127.0.0.1:1/v1"], "error: cannot reach http://127.0.0.1:1/v1"),
    ],
)
def test_run_user_errors_exit_2_with_one_line(tmp_path, probe_file, args, match):
    res = CliRunner().invoke(main, ["run", *args, "--probes", str(probe_file), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(match), res.output


def test_missing_probe_file(tmp_path):
    res = CliRunner().invoke(main, ["run", "--model", "baseline:echo", "--probes", str(tmp_path / "none.jsonl"),
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "none.jsonl" in res.output


def test_failed_preflight_writes_nothing(tmp_path, probe_file):
    store = tmp_path / "s.sqlite"
    res = CliRunner().invoke(main, ["run", "--model", "openai:m@http://127.0.0.1:1/v1", "--probes",
                                    str(probe_file), "--out", str(tmp_path / "r"), "--store", str(store)])
    assert res.exit_code == 2
    from harmscope.benchmarks.runs.store import Store

    assert Store(store).list_runs().empty and not (tmp_path / "r" / "run.json").exists()


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from harmscope.benchmarks.runs.store import Store

    # enough work (300 x 50 ms over 4 connections, ~4 s) that a loaded box still interrupts it midway
    n = 300
    probes = [make_probe(f"slow question {i}") for i in range(n)]
    path = tmp_path / "p.jsonl"
    probes_mod.write_probes(probes_mod.make_probe_set(probes, catalog_version="t", seed=0, params={}), path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "CI": "1"}
    with FakeChatServer(delay=0.05) as srv:
        cmd = [sys.executable, "-m", "harmscope.cli", "run", "--model", f"openai:fake@{srv.url}", "--probes",
               str(path), "--out", str(tmp_path / "run"), "--concurrency", "4"]
        # a pytest started as a background job (`make test &`) ignores SIGINT and its children inherit
        # that; give the child the default disposition, as a terminal would
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while srv.stats.ok < 30 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert child.returncode == 130, err
        assert "interrupted: kept" in err and "replies of run" in err  # says what was actually kept
        st, run_id = open_run(tmp_path / "run")
        part = st.get_run(run_id)
        n_before = len(st.replies(run_id))
        assert part.ended_at is None and 0 < n_before < n
        assert part.counts["answered"] == n_before and part.counts["missing"] == n - n_before
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"({n - n_before} answered, {n_before} already stored, 0 failed)" in out.stdout
    st = Store(st.path)
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == n
    assert [r.probe_id for r in st.replies(run_id)] == [p.id for p in probes]
