"""``harmscope probes`` through the real CLI entry point (errors: one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harmscope.benchmarks.probes.generate import read_probes
from harmscope.cli import main

FIX = Path(__file__).parent / "fixtures" / "probes_data"
RULES = ["--rules", "stereotypes,insults,no-body"]
BASE = ["probes", "generate", "--data-dir", str(FIX), *RULES]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_generate_stats_show(tmp_path) -> None:
    out = tmp_path / "p.jsonl"
    res = run(*BASE, "--transforms", "base64", "--transforms", "rot13,roleplay", "--per-rule", "6",
              "--benign-ratio", "0.2", "--hint-pairs", "2", "--framing-pairs", "2", "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    ps = read_probes(out)
    assert f"wrote {len(ps.probes)} probes to {out}" in res.stdout
    assert f"set hash {ps.manifest.set_hash}" in res.stdout
    assert ps.manifest.params["transforms"] == ["none", "base64", "rot13,roleplay"]

    res = run("probes", "stats", str(out), "--json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)
    assert st["family"] == {"standard": 18, "framing": 4, "hint": 4, "benign": 6}
    assert st["benign"] == {"benign": 6, "not benign": 26}
    assert sum(st["transform"].values()) == len(ps.probes)
    res = run("probes", "stats", str(out))
    assert res.exit_code == 0 and "by transform" in res.stdout and "rot13,roleplay" in res.stdout

    p = ps.probes[3]
    res = run("probes", "show", str(out), "--id", p.id[:8])
    assert res.exit_code == 0 and f"id: {p.id}" in res.stdout and p.messages[-1].content in res.stdout
    res = run("probes", "show", str(out), "--id", "zzzz")
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {out}: no probe with id 'zzzz'"


def test_generate_parquet_same_set_as_jsonl(tmp_path) -> None:
    a, b = tmp_path / "p.jsonl", tmp_path / "p.parquet"
    assert run(*BASE, "--out", str(a)).exit_code == 0
    assert run(*BASE, "--out", str(b)).exit_code == 0
    assert read_probes(a) == read_probes(b)


def test_list_transforms() -> None:
    res = run("probes", "list-transforms")
    assert res.exit_code == 0
    for name in ("base64", "rot13", "manyshot", "escalation", "monitored", "unmonitored", "payload-split"):
        assert name in res.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rules", "no-such-rule"], "no-such-rule"),
        (["--transforms", "base64,nope"], "unknown transform 'nope'"),
        (["--rules", "insults,-insults"], "selects no rules"),
        (["--groups", "planets"], "unknown identity axis 'planets'"),
        (["--benign-ratio", "1.5"], "benign-ratio must be in [0, 1)"),
        (["--preset", "huge"], "unknown preset 'huge'"),
    ],
)
def test_generate_errors_exit_2_with_one_line(tmp_path, extra, message) -> None:
    args = BASE[: -len(RULES)] if "--rules" in extra else BASE
    res = run(*args, *extra, "--out", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "x.jsonl").exists()


def test_missing_output_folder_is_created(tmp_path) -> None:
    res = run(*BASE, "--out", str(tmp_path / "new" / "deeper" / "x.jsonl"))
    assert res.exit_code == 0 and (tmp_path / "new" / "deeper" / "x.jsonl").is_file()


def test_output_under_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    res = run(*BASE, "--out", str(tmp_path / "afile" / "x.jsonl"))
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {tmp_path / 'afile' / 'x.jsonl'}: cannot write")


@pytest.mark.parametrize("out", [".", "x.csv"])
def test_unwritable_output(tmp_path, out) -> None:
    res = run(*BASE, "--out", str(tmp_path / out))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / out}")


def test_damaged_file_errors(tmp_path) -> None:
    out = tmp_path / "p.jsonl"
    assert run(*BASE, "--out", str(out)).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][:30], encoding="utf-8")
    res = run("probes", "stats", str(out))
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {out}:5: ")
    res = run("probes", "show", str(tmp_path / "none.jsonl"), "--id", "x")
    assert res.exit_code == 2 and "file not found" in res.stderr
