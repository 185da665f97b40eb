"""Backends: real-data accuracy, L2-SP fine-tuning, save/load without pickle, load_classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from harmscope.classifiers.backends import (
    BACKENDS,
    EmbedClassifier,
    TfidfClassifier,
    _l2sp_logreg,
    load_classifier,
)
from harmscope.classifiers.corpus import corpus_split
from harmscope.classifiers.datasets import read_davidson, read_ethos
from harmscope.errors import HarmscopeError, InputError


def test_registry():
    assert {"tfidf", "embed", "finetune", "detoxify"} <= set(BACKENDS.names())
    m = load_classifier("tfidf", C=2.0)
    assert isinstance(m, TfidfClassifier) and m.C == 2.0


def test_tfidf_clean_beats_chance_on_davidson(data_dir):
    df = read_davidson()
    tr, te = train_test_split(df, test_size=0.3, random_state=0, stratify=df["label"])
    tr, te = tr.sample(1500, random_state=0), te.sample(2000, random_state=0)
    auc = roc_auc_score(te["label"], TfidfClassifier().fit(tr, tr["label"]).predict_proba(te)[:, 1])
    assert auc > 0.92  # measured 0.96 with 1,500 training tweets


def test_tfidf_clean_beats_chance_on_ethos(data_dir):
    df = read_ethos()
    tr, te = train_test_split(df, test_size=0.3, random_state=0, stratify=df["label"])
    auc = roc_auc_score(te["label"], TfidfClassifier().fit(tr, tr["label"]).predict_proba(te)[:, 1])
    assert auc > 0.70  # measured 0.759 on 300 held-out comments


def test_l2sp_matches_sklearn_from_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    ref = LogisticRegression(C=0.7, tol=1e-10, max_iter=5000).fit(X, y)
    coef, b = _l2sp_logreg(X, y, np.ones(200), np.zeros(5), 0.0, 0.7, max_iter=5000)
    np.testing.assert_allclose(coef, ref.coef_.ravel(), atol=1e-4)
    assert abs(b - ref.intercept_[0]) < 1e-4


def test_partial_fit_is_anchored_to_pretrained_weights():
    c = corpus_split("clean")
    m = TfidfClassifier(finetune_C=1e-9).fit(c, c["label"])
    before = m.coef_.copy()
    m.partial_fit(c.head(40), 1 - c["label"].head(40))  # tiny C: the prior wins, weights stay
    np.testing.assert_allclose(m.coef_, before, atol=1e-6)
    m2 = TfidfClassifier(finetune_C=100.0).fit(c, c["label"])
    m2.partial_fit(c, 1 - c["label"])  # large C: the new (flipped) labels win
    assert roc_auc_score(c["label"], m2.predict_proba(c)[:, 1]) < 0.2


def test_fit_rejects_bad_labels():
    with pytest.raises(HarmscopeError, match="0/1"):
        TfidfClassifier().fit(["a", "b"], [0.3, 1])
    with pytest.raises(HarmscopeError, match="one class"):
        TfidfClassifier().fit(["a", "b"], [1, 1])
    with pytest.raises(HarmscopeError, match="not fitted"):
        TfidfClassifier().predict_proba(["a"])


@pytest.mark.parametrize("vectorizer,files", [
    ("hash", ["coef.npy", "cols.npy", "idf.npy", "model.json"]),
    ("sklearn", ["char_idf.npy", "char_vocab.json", "coef.npy", "model.json", "word_idf.npy", "word_vocab.json"]),
])
def test_tfidf_save_load_identical_without_pickle(tmp_path, vectorizer, files):
    c, e = corpus_split("clean"), corpus_split("eval")
    m = TfidfClassifier(vectorizer=vectorizer).fit(c, c["label"])
    m.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == files
    m2 = load_classifier(tmp_path / "m")
    assert isinstance(m2, TfidfClassifier) and m2.vectorizer == vectorizer
    np.testing.assert_array_equal(m2.predict_proba(e), m.predict_proba(e))
    assert roc_auc_score(e["label"], m2.predict_proba(e)[:, 1]) > 0.95
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["backend"] == "tfidf" and "scikit-learn" in card["versions"]


def test_hashing_tfidf_matches_a_hand_computed_example():
    from harmscope.classifiers.fastvec import HashingTfidf

    v = HashingTfidf(word_ngrams=(1, 1), char_ngrams=(3, 3), bits=20).fit(["ab ab", "cd"])
    # words "ab", "cd"; char 3-grams "ab ", "b a", " ab" (no 3-gram in "cd"): 5 columns
    assert v.n_features == 5
    X = v.transform(["ab ab", "AB ab", "zz cd"]).toarray()
    np.testing.assert_allclose(X[0], X[1], atol=1e-7)  # lower-cased
    idf_ab, idf_cd = np.log(3 / 2) + 1, np.log(3 / 2) + 1
    # word block of "ab ab": one column, tf 2, scaled by sqrt(tf * idf^2) -> sqrt(2)
    word_cols = np.flatnonzero(X[0] > 0)
    assert len(word_cols) == 4  # 1 word + 3 char 3-grams
    np.testing.assert_allclose(sorted(X[0][word_cols]), [1 / np.sqrt(3)] * 3 + [2 * idf_ab / np.sqrt(2 * idf_ab**2)],
                               rtol=1e-5)
    # "zz" and "zz " are unseen and dropped; "cd" alone in its block has norm 1; " cd" is unseen too
    assert np.count_nonzero(X[2]) == 1 and np.isclose(X[2].max(), idf_cd / idf_cd)


@pytest.mark.neural
def test_embed_save_load_identical(tmp_path):
    torch = pytest.importorskip("torch")
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _embed_roundtrip(tmp_path)
    finally:
        torch.set_num_threads(n_threads)


def _embed_roundtrip(tmp_path):
    c = corpus_split("clean").head(120)
    m = EmbedClassifier().fit(c, c["label"])
    texts = corpus_split("eval")["text"].head(60).tolist()
    m.save(tmp_path / "e")
    m2 = load_classifier(tmp_path / "e")
    np.testing.assert_array_equal(m2.predict_proba(texts), m.predict_proba(texts))
    assert roc_auc_score(c["label"], m.predict_proba(c)[:, 1]) > 0.9


def test_load_classifier_errors(tmp_path):
    with pytest.raises(InputError, match="unknown classifier"):
        load_classifier("nonsense")
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="not a harmscope model folder"):
        load_classifier(tmp_path / "x")
