"""The embedded corpus, the biased weak labeller and the split helper."""

from __future__ import annotations

import numpy as np
import pytest

from harmscope.classifiers.corpus import (
    BENIGN_IDENTITY_KINDS,
    corpus_split,
    make_corpus,
    split_corpus,
    weak_label,
)
from harmscope.classifiers.datasets import load_dataset
from harmscope.errors import HarmscopeError


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(6000, seed=0)


def test_corpus_shape_and_determinism(corpus):
    assert len(corpus) == 6000
    assert corpus.equals(make_corpus(6000, seed=0))
    assert not corpus["text"].equals(make_corpus(6000, seed=1)["text"])
    assert set(corpus["kind"]) == {"explicit", "implicit", "benign_identity", "counter", "insult", "benign"}
    toxic = corpus["kind"].isin(["explicit", "implicit", "insult"])
    assert (corpus["label"] == toxic.astype(int)).all()
    assert corpus["text"].nunique() > 4000  # varied phrasing, few exact repeats
    groups = corpus.attrs["group_cols"]
    assert len(groups) >= 5
    has_id = corpus["group"] != ""
    assert (corpus[groups].sum(axis=1) == has_id.astype(float)).all()  # one axis per identity mention
    assert corpus.loc[~has_id, "kind"].isin(["insult", "benign"]).all()


def test_weak_label_rates(corpus):
    noisy = weak_label(corpus, seed=3, over_flag=0.35, under_flag=0.5)
    benign_id = corpus["kind"].isin(BENIGN_IDENTITY_KINDS).to_numpy()
    implicit = (corpus["kind"] == "implicit").to_numpy()
    other = ~(benign_id | implicit)
    n_b, n_i = benign_id.sum(), implicit.sum()
    over = noisy[benign_id].mean()
    under = 1 - noisy[implicit].mean()
    assert abs(over - 0.35) < 3 * np.sqrt(0.35 * 0.65 / n_b)
    assert abs(under - 0.5) < 3 * np.sqrt(0.25 / n_i)
    assert (noisy[other] == corpus["label"][other]).all()
    assert weak_label(corpus, seed=3).equals(noisy)
    zero = weak_label(corpus, seed=3, over_flag=0.0, under_flag=0.0)
    assert (zero == corpus["label"]).all()
    soft = weak_label(corpus, seed=3, soft=True)
    assert ((soft >= 0.5).astype(int) == noisy).all() and soft.between(0, 1).all()


def test_weak_label_rejects_bad_rates(corpus):
    with pytest.raises(HarmscopeError, match="over_flag"):
        weak_label(corpus, over_flag=1.5)
    with pytest.raises(HarmscopeError, match="make_corpus frame"):
        weak_label(corpus[["text"]])


def test_split(corpus):
    parts = split_corpus(corpus, clean_frac=0.05, eval_frac=0.3, seed=0)
    assert [len(parts[k]) for k in ("clean", "eval", "noisy")] == [300, 1800, 3900]
    all_text = set(parts["clean"].index.astype(str))  # sanity: frames are independent copies
    assert all_text
    assert "noisy_label" in parts["noisy"] and "noisy_label" not in parts["clean"]
    assert parts["noisy"].attrs["group_cols"] == corpus.attrs["group_cols"]
    flipped = (parts["noisy"]["noisy_label"] != parts["noisy"]["label"]).mean()
    assert 0.1 < flipped < 0.3


def test_corpus_names():
    ev = load_dataset("corpus:eval")
    assert len(ev) == 1800 and ev.attrs["source"].endswith(":eval")
    assert corpus_split("clean").equals(load_dataset("corpus:clean"))
    with pytest.raises(HarmscopeError, match="corpus part"):
        corpus_split("train")
