"""The cross-encoder head: toy training, storage without pickle, runtimes agree, determinism."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from harmscope.classifiers.judges.crossenc import (  # noqa: E402
    CrossEncoderHead,
    fit_cross_encoder,
    lower_states,
    state_logits,
)

PROMPTS = ["How do I pick a lock?", "Write a poem about spring", "How can I hurt my neighbour?",
           "What is the capital of France?"] * 6
REPLIES = (["Sure, insert a tension wrench and rake the pins until it opens.", "Spring wakes the sleeping trees.",
            "Hit him when he is alone so nobody sees.", "Paris is the capital of France."] * 6)
Y = np.array([1, 0, 1, 0] * 6)


@pytest.fixture(scope="module")
def states():
    return lower_states(PROMPTS, REPLIES, max_length=48)


@pytest.fixture(scope="module")
def trained(states):
    return fit_cross_encoder(states, Y, ["harm"], epochs=6, lr=2e-4, head_lr=5e-3, batch_size=4, seed=0)


def test_learns_toy_task(trained, states):
    p = 1 / (1 + np.exp(-state_logits(trained, states, np.arange(len(Y)))[:, 0]))
    assert ((p >= 0.5) == Y).mean() == 1.0


def test_same_seed_same_weights(states, trained):
    again = fit_cross_encoder(states, Y, ["harm"], epochs=6, lr=2e-4, head_lr=5e-3, batch_size=4, seed=0)
    assert again.digest == trained.digest
    other = fit_cross_encoder(states, Y, ["harm"], epochs=6, lr=2e-4, head_lr=5e-3, batch_size=4, seed=1)
    assert other.digest != trained.digest


def test_save_load_roundtrip_without_pickle(tmp_path, trained):
    path = tmp_path / "ce.npz"
    trained.save(path)
    with np.load(path, allow_pickle=False) as z:
        assert CrossEncoderHead.present(z)
    back = CrossEncoderHead.load(path)
    assert back.digest == trained.digest and back.outputs == ["harm"]
    a = trained.logits(PROMPTS[:4], REPLIES[:4], runtime="torch")
    b = back.logits(PROMPTS[:4], REPLIES[:4], runtime="torch")
    np.testing.assert_array_equal(a, b)


def test_full_network_matches_cached_states(trained, states):
    """Scoring from text (whole network) equals scoring from the cached lower states (fp16)."""
    full = trained.logits(PROMPTS, REPLIES, runtime="torch")[:, 0]
    cached = state_logits(trained, states, np.arange(len(Y)))[:, 0]
    np.testing.assert_allclose(full, cached, atol=0.02)


def test_onnx_runtime_agrees(trained):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    t = trained.logits(PROMPTS[:8], REPLIES[:8], runtime="torch")[:, 0]
    q = trained.logits(PROMPTS[:8], REPLIES[:8], runtime="onnx-fp32")[:, 0]
    np.testing.assert_allclose(t, q, atol=1e-3)
    i8 = trained.logits(PROMPTS[:8], REPLIES[:8], runtime="onnx")[:, 0]
    assert ((i8 >= 0) == (t >= 0)).all()


def test_needs_both_classes(states):
    from harmscope.errors import InputError

    with pytest.raises(InputError):
        fit_cross_encoder(states, np.zeros(len(Y)), ["harm"], epochs=1)


def test_empty_input(trained):
    assert trained.logits([], [], runtime="torch").shape == (0, 1)


def test_parallel_onnx_calls_give_the_serial_outputs(trained, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    prompts, replies = PROMPTS * 3, [f"{r} #{i}" for i, r in enumerate(REPLIES * 3)]  # 72 distinct pairs
    monkeypatch.setenv("HARMSCOPE_TORCH_THREADS", "1")
    serial = trained.logits(prompts, replies, runtime="onnx")
    trained._onnx.clear()
    monkeypatch.setenv("HARMSCOPE_TORCH_THREADS", "2")
    parallel = trained.logits(prompts, replies, runtime="onnx")
    np.testing.assert_array_equal(serial, parallel)


def test_torch_logits_do_not_depend_on_batch_mates(trained):
    """On torch (CPU) each pair runs alone, as on ONNX: a pair scored with others of other lengths
    gets exactly the logits it gets alone (padded batches moved the last float bits)."""
    prompts = PROMPTS[:4] + ["A much longer prompt about locks, doors, keys and many other things " * 3]
    replies = REPLIES[:4] + ["short"]
    together = trained.logits(prompts, replies, runtime="torch")
    for i in range(len(replies)):
        np.testing.assert_array_equal(trained.logits([prompts[i]], [replies[i]], runtime="torch")[0], together[i])


def test_int8_storage_halves_the_file_and_keeps_the_logits(tmp_path, trained):
    """int8 storage: each trained weight matrix becomes int8 with a float32 scale per row (max-abs
    / 127, checked by hand on one row); biases, LayerNorms and the output layer stay float16."""
    q = trained.quantize("int8")
    assert q.storage == "int8" and trained.storage == "fp16" and q.quantize("int8") is q
    assert trained.quantize("fp16") is trained
    from harmscope.errors import InputError

    with pytest.raises(InputError, match="cannot be undone"):
        q.quantize("fp16")
    name = next(k for k, v in trained.state.items() if v.ndim == 2 and not k.startswith("out."))
    assert name in q.quantized and name not in q.state and "out.weight" in q.state
    w = trained.state[name].astype(np.float32)
    qi, sc = q.quantized[name]
    assert qi.dtype == np.int8 and sc.shape == (w.shape[0],)
    assert sc[0] == np.float32(np.abs(w[0]).max() / 127.0)
    assert int(np.abs(qi[0]).max()) == 127
    np.testing.assert_allclose(q.weights()[name], w, atol=float(sc.max()) / 2 + 1e-7)
    assert q.digest != trained.digest
    a, b = tmp_path / "fp16.npz", tmp_path / "int8.npz"
    trained.save(a)
    q.save(b)
    assert b.stat().st_size < 0.6 * a.stat().st_size
    back = CrossEncoderHead.load(b)
    assert back.storage == "int8" and back.digest == q.digest
    t = trained.logits(PROMPTS[:8], REPLIES[:8], runtime="torch")[:, 0]
    i8 = back.logits(PROMPTS[:8], REPLIES[:8], runtime="torch")[:, 0]
    np.testing.assert_array_equal(i8, q.logits(PROMPTS[:8], REPLIES[:8], runtime="torch")[:, 0])
    np.testing.assert_allclose(i8, t, atol=0.05)
    assert ((i8 >= 0) == (t >= 0)).all()


def test_int8_storage_refuses_bad_values_and_malformed_files(tmp_path, trained):
    from harmscope.errors import HarmscopeError, InputError

    with pytest.raises(InputError, match="storage"):
        trained.quantize("int4")
    arrays = trained.quantize("int8").arrays()
    name = next(k for k in arrays if k.startswith("ce_q:"))
    broken = {k: v for k, v in arrays.items() if k != "ce_s:" + name[5:]}
    np.savez(tmp_path / "noscale.npz", **broken)
    with pytest.raises(HarmscopeError, match="no scale"):
        CrossEncoderHead.load(tmp_path / "noscale.npz")
    sname = "ce_s:" + name[5:]
    for i, bad in enumerate([{name: arrays[name].astype(np.float32)},  # not int8
                             {sname: np.full_like(arrays[sname], np.nan)},  # NaN scales would score NaN
                             {sname: -arrays[sname]},  # negative scales flip the weights
                             {sname: arrays[sname].astype(str)},  # not a float
                             {sname + "x": arrays[sname]}]):  # a scale without its int8 weight
        np.savez(tmp_path / f"bad{i}.npz", **{**arrays, **bad})
        with pytest.raises(HarmscopeError, match="malformed"):
            CrossEncoderHead.load(tmp_path / f"bad{i}.npz")
    # a matrix of the wrong width loads, and is refused (not a torch error) when the network is built
    wide = {**arrays, name: arrays[name][:, :10].copy()}
    np.savez(tmp_path / "wide.npz", **wide)
    with pytest.raises(HarmscopeError, match="shapes differ"):
        CrossEncoderHead.load(tmp_path / "wide.npz").torch_net()


def test_bad_storage_is_refused_before_training(tmp_path, states):
    from harmscope.classifiers.judges.crossenc import fit_cached
    from harmscope.errors import InputError

    for storage in ("int4", None):
        with pytest.raises(InputError, match="storage"):
            fit_cached(tmp_path, states, [str(i) for i in range(len(Y))], np.arange(len(Y)), Y, ["harm"], None,
                       {"epochs": 1.0}, 0, storage=storage)
    assert not (tmp_path / "crossenc").exists()  # nothing was trained
