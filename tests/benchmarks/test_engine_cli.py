"""``harmscope run`` end to end through click."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmscope.cli import main
from harmscope.models.testing import FakeChatServer, make_probe
from harmscope.store import open_run

probes_mod = pytest.importorskip("harmscope.benchmarks.probes")


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
