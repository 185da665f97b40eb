"""The one reader of ``RUN_DIR/run.json``: relative store paths, and broken files as one error line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmscope.benchmarks.runs.store import RunInfo, Store, open_run, read_run_info
from harmscope.cli import main
from harmscope.errors import InputError
from harmscope.types import RunManifest


def _run_dir_with_relative_store(tmp_path):
    store_path = tmp_path / "runs" / "shared.sqlite"
    store_path.parent.mkdir()
    st = Store(store_path)
    st.save_run(RunManifest(run_id="abc123", probe_set_hash="ps1", model="baseline:echo"))
    st.close()
    run_dir = tmp_path / "runs" / "a"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"run_id": "abc123", "store": "../shared.sqlite"}))
    return run_dir, store_path


def test_relative_store_is_relative_to_the_run_dir(tmp_path, monkeypatch):
    run_dir, store_path = _run_dir_with_relative_store(tmp_path)
    monkeypatch.chdir(tmp_path)  # not the run dir: a cwd-relative reading would miss the store
    info = read_run_info(run_dir)
    assert info == RunInfo(path=run_dir / "run.json", run_id="abc123", store=run_dir / "../shared.sqlite")
    assert info.store.resolve() == store_path.resolve()
    _, rid = open_run(run_dir)
    assert rid == "abc123"
    # every command that reads run.json goes through the same reader
    r = CliRunner().invoke(main, ["runs", "list", str(run_dir), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [row["run_id"] for row in json.loads(r.output)] == ["abc123"]


def test_missing_store_key_means_the_default_store(tmp_path, monkeypatch):
    monkeypatch.delenv("HARMSCOPE_STORE", raising=False)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"run_id": "x"}))
    assert read_run_info(tmp_path / "r").store == (tmp_path / "harmscope.sqlite").resolve()


@pytest.mark.parametrize(("text", "why"), [
    ("{not json", "not valid JSON at line 1 column 2"),
    ("[1, 2]", "no 'run_id' string"),
    ('{"store": "s.sqlite"}', "no 'run_id' string"),
    ('{"run_id": "r", "store": 5}', "'store' must be a path string"),
    (None, None),  # not UTF-8 text
])
def test_broken_run_json_is_one_line_naming_the_file(tmp_path, text, why):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    path = run_dir / "run.json"
    if text is None:
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_text(text)
    with pytest.raises(InputError) as e:
        read_run_info(run_dir)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and "run.json" in msg
    if why:
        assert why in msg


@pytest.mark.parametrize("argv", [
    lambda d: ["runs", "list", str(d)],
    lambda d: ["runs", "show", str(d)],
    lambda d: ["score", str(d), "--store", str(d / "x.sqlite")],
    lambda d: ["report", str(d), "--out", str(d.parent / "rep"), "--format", "json"],
])
def test_cli_reports_bad_run_json_as_one_error_line(tmp_path, argv):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{not json")
    (run_dir / "result.json").write_text(json.dumps({"manifest": {"run_id": "r"}}))
    r = CliRunner().invoke(main, argv(run_dir))
    assert r.exit_code == 2, (r.output, r.exception)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(run_dir / "run.json") in lines[0], lines
    assert "bad run.json" in lines[0]
