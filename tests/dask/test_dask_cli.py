"""The same CLI commands run with --engine dask:2 and give the local results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARMSCOPE_TORCH_THREADS": "1"}
    env.pop("HARMSCOPE_ENGINE", None)
    return subprocess.run([sys.executable, "-m", "harmscope.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_audit_and_predict_with_dask_engine_match_local(tmp_path):
    model = tmp_path / "model"
    r = _cli("train", "--backend", "tfidf", "--strategy", "clean", "--clean", "corpus:clean", "--out", str(model),
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    outs = {}
    for engine in ("local", "dask:2"):
        out = tmp_path / f"audit-{engine.replace(':', '')}"
        r = _cli("audit", "--engine", engine, "--classifier", str(model), "--data", "corpus:eval",
                 "--n-boot", "100", "--no-counterfactual", "--out", str(out), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        outs[engine] = json.loads((out / "audit.json").read_text())
        pred = tmp_path / f"pred-{engine.replace(':', '')}.csv"
        r = _cli("--engine", engine, "predict", "--classifier", str(model), "--data", "corpus:eval",
                 "--out", str(pred), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        outs[engine + "-pred"] = pred.read_text()
    assert outs["local"]["overall"] == outs["dask:2"]["overall"]
    assert outs["local"]["tables"]["jigsaw"] == outs["dask:2"]["tables"]["jigsaw"]
    assert outs["local-pred"] == outs["dask:2-pred"]


def test_bad_engine_spec_is_one_line(tmp_path):
    r = _cli("audit", "--engine", "dask:zero", "--scores-col", "s", "--data", "x.csv", "--out", "o", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: bad engine spec") and len(r.stderr.strip().splitlines()) == 1
