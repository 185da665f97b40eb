"""The engine abstraction on the local path: spec parsing, errors, predict_dataset, bootstrap_map."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pandas as pd
import pytest

from harmscope import engines as ex
from harmscope.classifiers import partitioned as pt
from harmscope.errors import HarmscopeError
from harmscope.fairness.parallel import bias_metrics as parallel_bias_metrics


def test_no_dask_import_at_module_level():
    # engines are core: importing them must not pull in dask
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
    ("dask://scheduler.example:8786", ("dask", "tcp://scheduler.example:8786")),
    ("dask://10.0.0.5:8786/", ("dask", "tcp://10.0.0.5:8786")),
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
    out = pt.predict_dataset(est, pd.DataFrame({"text": texts}), engine="local", partition_size=2,
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
        pt._texts(pd.DataFrame({"body": ["x"]}))
    with pytest.raises(HarmscopeError, match="not one string"):
        pt.predict_dataset(_Counting(), "just one", engine="local")


def test_plan_partitions_dedupes_sorts_and_restores_order():
    texts = ["ccc", "a", "bb", "a", "dddd", "bb", "e"]
    parts, inverse = pt.plan_partitions(texts, partition_size=2, align=2)
    # unique texts in first-appearance order: ccc a bb dddd e; stable by length: a e bb ccc dddd
    assert parts == [["a", "e"], ["bb", "ccc"], ["dddd"]]
    flat = np.array([t for p in parts for t in p], dtype=object)
    assert flat[inverse].tolist() == texts
    # partition size is rounded down to the alignment (but never below it)
    parts, _ = pt.plan_partitions([f"t{i:03d}" for i in range(300)], partition_size=100, align=64)
    assert [len(p) for p in parts] == [64, 64, 64, 64, 44]
    with pytest.raises(HarmscopeError):
        pt.plan_partitions(texts, partition_size=0)


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
    a = parallel_bias_metrics(y, s, groups, n_boot=60, seed=1, engine="local")
    b = fair_bias_metrics(y, s, groups, n_boot=60, seed=1)
    pd.testing.assert_frame_equal(a.per_group, b.per_group)
    assert a.overall == b.overall


def test_engines_import_nothing_of_classifiers_fairness_or_runs():
    # engines are core infrastructure: generic map/submit, no knowledge of what they run
    import subprocess

    code = ("import sys, harmscope.engines, harmscope.engines.dask, harmscope.engines.workers; "
            "print(sorted(m for m in sys.modules if m.startswith('harmscope.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)  # noqa: S307 - our own subprocess printing a list of names
    later = ("harmscope.classifiers", "harmscope.fairness", "harmscope.benchmarks", "harmscope.models",
             "harmscope.reports", "harmscope.rules")
    assert "harmscope.engines.dask" in loaded
    assert [m for m in loaded if m.startswith(later)] == []


def test_engines_are_looked_up_in_the_registry():
    assert {"local", "dask"} <= set(ex.ENGINES.names())
    assert ex.ENGINES.get("local").obj is ex.LocalEngine
    assert ex.ENGINES.get("dask").lazy  # registered lazily: dask is imported only when used
    # a new engine is reachable from a spec by registering it, nothing else
    import subprocess

    code = """
import sys
from harmscope.engines import ENGINES, LocalEngine, get_engine, parse_spec
from harmscope.errors import HarmscopeError

@ENGINES.register
class Toy(LocalEngine):
    name = "toy"
    version = "1"
    syntax = "toy:N"
    @staticmethod
    def parse_arg(rest, spec):
        if rest is None or not rest.isdigit():
            raise HarmscopeError(f"bad engine spec {spec!r}: toy:N")
        return int(rest)
    @classmethod
    def from_spec(cls, arg=None, **kw):
        eng = cls(); eng.n = arg; return eng

eng = get_engine("toy:3")
print(type(eng).__name__, eng.n, parse_spec("TOY:4"), eng.map(lambda x: x + 1, [1, 2]))
try:
    parse_spec("nope")
except HarmscopeError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.strip().splitlines()
    assert first == "Toy 3 ('toy', 4) [2, 3]"
    assert second.startswith("bad engine spec 'nope': expected ") and "toy:N" in second and "dask:N" in second


def test_local_ship_folder_is_the_path_itself(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("{}")
    kind, key, payload = ex.LocalEngine().ship_folder(tmp_path / "m", marker="model.json")
    assert kind == "path" and payload == str((tmp_path / "m").resolve()) and key.startswith("path:")
    assert ex.worker_folder((kind, key, payload)) == (tmp_path / "m").resolve()


def test_worker_folder_writes_shipped_bytes_once(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ref = ("bytes", "k1", {"model.json": b"{}", "sub/w.bin": b"\x00\x01"})
    p = ex.worker_folder(ref)
    assert (p / "model.json").read_bytes() == b"{}" and (p / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    (p / "model.json").write_bytes(b"changed")
    assert ex.worker_folder(ref) == p and (p / "model.json").read_bytes() == b"changed"  # not written again


def test_worker_cached_builds_once_per_key():
    built = []
    a = ex.worker_cached("test-key-a", lambda: built.append(1) or object())
    b = ex.worker_cached("test-key-a", lambda: built.append(1) or object())
    assert a is b and built == [1] and ex.load_counts()["test-key-a"] == 1
