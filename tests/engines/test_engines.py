"""The engine abstraction on the local path: spec parsing, errors, predict_dataset, bootstrap_map."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pandas as pd
import pytest

from harmscope import engines as ex
from harmscope.errors import HarmscopeError


def test_no_dask_import_at_module_level():
    # execution is core: importing it must not pull in dask
    import subprocess

    code = "import sys, harmscope.engines; print('dask' in sys.modules or 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("spec", "want"), [
    (None, ("local", None)),
    ("local", ("local", None)),
    ("LOCAL", ("local", None)),
    ("dask", ("dask", None)),
    ("dask:3", ("dask", 3)),
    ("dask://scheduler.example:8786", ("dask-remote", "tcp://scheduler.example:8786")),
    ("dask://10.0.0.5:8786/", ("dask-remote", "tcp://10.0.0.5:8786")),
])
def test_parse_spec(spec, want):
    assert ex.parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["dask:0", "dask:two", "spark", "dask://host", "dask://host:99999", "dask:-1"])
def test_bad_spec_is_one_line(spec):
    with pytest.raises(HarmscopeError) as e:
        ex.parse_spec(spec)
    msg = str(e.value)
    assert "\n" not in msg and spec in msg


def test_unreachable_scheduler_fails_fast_with_one_line():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import time

    t0 = time.monotonic()
    with pytest.raises(HarmscopeError) as e:
        ex.get_engine(f"dask://127.0.0.1:{port}", connect_timeout=1.5)
    assert time.monotonic() - t0 < 20
    msg = str(e.value)
    assert "\n" not in msg and f"dask://127.0.0.1:{port}" in msg and "unreachable" in msg


def test_current_engine_follows_env(monkeypatch):
    monkeypatch.delenv(ex.ENV_VAR, raising=False)
    assert ex.current_engine().name == "local"
    monkeypatch.setenv(ex.ENV_VAR, "local")
    assert isinstance(ex.current_engine(), ex.LocalEngine)
    monkeypatch.setenv(ex.ENV_VAR, "nonsense")
    with pytest.raises(HarmscopeError, match="bad engine spec 'nonsense'"):
        ex.current_engine()


def test_engine_scope_overrides_and_restores(monkeypatch):
    monkeypatch.delenv(ex.ENV_VAR, raising=False)
    mine = ex.LocalEngine()
    with ex.engine_scope(mine) as eng:
        assert eng is mine and ex.current_engine() is mine
    assert ex.current_engine() is not mine


def test_local_map_keeps_order_and_is_a_plain_loop():
    calls = []

    def f(x):
        calls.append(x)
        return x * x

    eng = ex.LocalEngine()
    assert isinstance(eng, ex.Engine)
    assert eng.map(f, range(5)) == [0, 1, 4, 9, 16]
    assert calls == [0, 1, 2, 3, 4]


class _Counting:
    """A deterministic stand-in classifier: P(toxic) from the text's length and vowels."""

    def __init__(self):
        self.calls = 0

    def predict_proba(self, texts):
        self.calls += 1
        if isinstance(texts, pd.DataFrame):
            texts = texts["text"].tolist()
        p = np.array([(len(t) % 7 + sum(c in "aeiou" for c in t)) / 40.0 for t in texts])
        return np.column_stack([1 - p, p])


def test_predict_dataset_local_calls_predict_proba_once(tmp_path):
    est = _Counting()
    texts = ["alpha beta", "gamma", "delta epsilon zeta", "alpha beta"]
    out = ex.predict_dataset(est, pd.DataFrame({"text": texts}), engine="local", partition_size=2,
                             out_dir=tmp_path / "scores")
    assert est.calls == 1
    np.testing.assert_array_equal(out, est.predict_proba(texts))
    parts = sorted((tmp_path / "scores").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    back = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert back["row"].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(back[["p0", "p1"]].to_numpy(), out)


def test_predict_dataset_rejects_bad_input():
    with pytest.raises(HarmscopeError, match="'text' column"):
        ex._texts(pd.DataFrame({"body": ["x"]}))
    with pytest.raises(HarmscopeError, match="not one string"):
        ex.predict_dataset(_Counting(), "just one", engine="local")


def test_plan_partitions_dedupes_sorts_and_restores_order():
    texts = ["ccc", "a", "bb", "a", "dddd", "bb", "e"]
    parts, inverse = ex.plan_partitions(texts, partition_size=2, align=2)
    # unique texts in first-appearance order: ccc a bb dddd e; stable by length: a e bb ccc dddd
    assert parts == [["a", "e"], ["bb", "ccc"], ["dddd"]]
    flat = np.array([t for p in parts for t in p], dtype=object)
    assert flat[inverse].tolist() == texts
    # partition size is rounded down to the alignment (but never below it)
    parts, _ = ex.plan_partitions([f"t{i:03d}" for i in range(300)], partition_size=100, align=64)
    assert [len(p) for p in parts] == [64, 64, 64, 64, 44]
    with pytest.raises(HarmscopeError):
        ex.plan_partitions(texts, partition_size=0)


def test_bootstrap_map_local_equals_fairness_serial():
    from harmscope.fairness.bootstrap import bootstrap_chunks, resample_counts

    chunks = bootstrap_chunks(120, seed=7, chunk_size=25)
    got = ex.bootstrap_map(lambda c: resample_counts(10, c).sum(), chunks, engine="local")
    assert got == [resample_counts(10, c).sum() for c in chunks] == [250.0] * 4 + [200.0]
    assert ex.chunk_mapper("local") is None


def test_bias_metrics_local_is_the_fairness_call():
    from harmscope.fairness import bias_metrics as fair_bias_metrics

    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    groups = pd.DataFrame({"g1": (rng.random(n) < 0.3).astype(float), "g2": (rng.random(n) < 0.4).astype(float)})
    a = ex.bias_metrics(y, s, groups, n_boot=60, seed=1, engine="local")
    b = fair_bias_metrics(y, s, groups, n_boot=60, seed=1)
    pd.testing.assert_frame_equal(a.per_group, b.per_group)
    assert a.overall == b.overall
