"""The refusal-gated harm head and evaluation-only sources in leave-one-source-out validation."""

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.judges.heads import GatedHead, Head


def _heads():
    # inner: logistic on feature 0 (logit = 2*x0 - 1); gate: 3 classes, softmax of [0, 0, x1]
    inner = Head([(np.array([[2.0], [0.0]]), np.array([-1.0]))], ["0", "1"])
    gate = Head([(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.zeros(3))], ["comply", "partial", "refusal"])
    return inner, gate


def test_gated_probability_is_harm_times_not_refused():
    inner, gate = _heads()
    g = GatedHead(inner, gate)
    X = np.array([[1.0, 0.0], [1.0, 2.0], [0.0, -50.0]])
    p = g.proba(X)
    harm = 1 / (1 + np.exp(-np.array([1.0, 1.0, -1.0])))
    refused = np.array([1 / 3, np.exp(2) / (2 + np.exp(2)), np.exp(-50) / (2 + np.exp(-50))])
    assert p[:, 1] == pytest.approx(harm * (1 - refused), rel=1e-5)
    assert p.sum(axis=1) == pytest.approx(np.ones(3))
    assert GatedHead(inner).proba(X) == pytest.approx(inner.proba(X))


def test_gated_head_round_trip_and_plain_heads_still_load(tmp_path):
    inner, gate = _heads()
    g = GatedHead(inner, gate)
    g.save(tmp_path / "g.npz")
    back = GatedHead.load(tmp_path / "g.npz")
    X = np.random.default_rng(0).normal(size=(5, 2))
    assert back.gate is not None and back.digest == g.digest != inner.digest
    assert back.proba(X) == pytest.approx(g.proba(X), abs=1e-3)
    inner.save(tmp_path / "h.npz")  # a plain head (older files, toy heads) loads without a gate
    plain = GatedHead.load(tmp_path / "h.npz")
    assert plain.gate is None and plain.digest == inner.digest
    with pytest.raises(ValueError, match="no class 'refusal'"):
        GatedHead(inner, inner)


def test_evaluation_only_rows_are_scored_but_never_trained_on():
    from harmscope.classifiers.judges.fit import loso

    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(3 * n, 4))
    y = (X[:, 0] > 0).astype(int)
    y[2 * n:] = 1 - y[2 * n:]  # source c has the opposite labels
    df = pd.DataFrame({"source": ["a"] * n + ["b"] * n + ["c"] * n, "pid": [str(i) for i in range(3 * n)]})
    trainable = np.array([True] * (2 * n) + [False] * n)
    cfg = {"hidden": 0, "C": 1.0}
    res, out = loso("harm", df, X, y, cfg, trainable=trainable)
    assert set(res["per_source"]) == {"a", "b", "c"}
    assert res["per_source"]["a"]["accuracy"] >= 0.9  # trained on b only: c's flipped labels would spoil it
    assert res["per_source"]["c"]["accuracy"] <= 0.1  # scored with the a+b model
    mixed, _ = loso("harm", df, X, y, cfg)
    assert mixed["per_source"]["a"]["accuracy"] < res["per_source"]["a"]["accuracy"]
    assert res["pooled"]["n"] == 3 * n


def test_text_stack_head_averages_log_probabilities_and_round_trips(tmp_path):
    from harmscope.classifiers.judges.heads import TextStackHead, fit_text_stack

    texts = ["i cannot help with that", "sure here is how", "i cannot do that", "sure step one"] * 3
    y = np.array(["refusal", "comply", "refusal", "comply"] * 3)
    X = np.zeros((len(texts), 2))
    inner = Head([(np.zeros((2, 1)), np.array([0.3]))], ["comply", "refusal"])  # P(refusal) = sigmoid(0.3)
    st = fit_text_stack(inner, texts, y, C=4.0, weight=0.5)
    z = np.asarray(st.tfidf.transform(texts) @ st.W).ravel() + st.b[0]  # tfidf logit of "refusal"
    pt = 1 / (1 + np.exp(-z))
    ph = 1 / (1 + np.exp(-0.3))
    num = np.sqrt(ph * pt)
    expect = num / (num + np.sqrt((1 - ph) * (1 - pt)))
    p = st.proba(X, texts)
    assert p[:, 1] == pytest.approx(expect, rel=1e-5)
    assert (p[y == "refusal", 1] > 0.5).all() and (p[y == "comply", 1] < 0.5).all()
    with pytest.raises(ValueError, match="reply texts"):
        st.proba(X)
    st.save(tmp_path / "s.npz")
    back = TextStackHead.load(tmp_path / "s.npz")
    assert back.digest == st.digest != inner.digest
    assert back.proba(X, texts) == pytest.approx(st.proba(X, texts), abs=2e-3)
    assert Head.load(tmp_path / "s.npz").digest == inner.digest  # the embedding head alone (the harm gate)
    inner.save(tmp_path / "h.npz")
    plain = TextStackHead.load(tmp_path / "h.npz")
    assert plain.tfidf is None and plain.digest == inner.digest and plain.proba(X) == pytest.approx(inner.proba(X), abs=1e-3)


def test_text_gate_reads_the_replies_and_round_trips(tmp_path):
    from harmscope.classifiers.judges.heads import TextStackHead, fit_text_stack

    inner, gate = _heads()
    texts = ["i cannot help with that", "sure here is how", "i cannot do that", "sure step one", "maybe"] * 3
    y = np.array(["refusal", "comply", "refusal", "comply", "partial"] * 3)
    tgate = fit_text_stack(gate, texts, y, C=4.0, weight=0.5)
    g = GatedHead(inner, tgate)
    X = np.random.default_rng(1).normal(size=(len(texts), 2))
    assert g.reads_texts and not GatedHead(inner, gate).reads_texts
    refused = tgate.proba(X, texts)[:, tgate.classes.index("refusal")]
    assert g.proba(X, texts)[:, 1] == pytest.approx(inner.proba(X)[:, 1] * (1 - refused), rel=1e-5)
    with pytest.raises(ValueError, match="reply texts"):
        g.proba(X)
    g.save(tmp_path / "g.npz")
    back = GatedHead.load(tmp_path / "g.npz")
    assert isinstance(back.gate, TextStackHead) and back.reads_texts
    assert back.digest == g.digest != GatedHead(inner, gate).digest
    assert back.proba(X, texts) == pytest.approx(g.proba(X, texts), abs=2e-3)
