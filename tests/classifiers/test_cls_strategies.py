"""Training strategies: what each one feeds the backend, and that all run end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from harmscope.classifiers.backends import TfidfClassifier
from harmscope.classifiers.corpus import make_corpus, split_corpus
from harmscope.classifiers.strategies import STRATEGIES, confident_disagreements, train
from harmscope.errors import HarmscopeError


def roc_auc_score(y, s) -> float:
    """Mann-Whitney AUC (average ranks for ties), the reference formula."""
    y = np.asarray(y).astype(bool)
    r = rankdata(np.asarray(s, dtype=float))
    n1, n0 = y.sum(), (~y).sum()
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


class Recorder:
    """A stand-in backend that records every fit / partial_fit call."""

    calls: list[tuple[str, list[str], np.ndarray, np.ndarray | None]]

    def __init__(self):
        self.calls = []

    def fit(self, X, y, sample_weight=None):
        self.calls.append(("fit", list(X["text"]), np.asarray(y), sample_weight))
        return self

    def partial_fit(self, X, y, sample_weight=None):
        self.calls.append(("partial_fit", list(X["text"]), np.asarray(y), sample_weight))
        return self


CLEAN = pd.DataFrame({"text": ["c1", "c2"], "target": [1.0, 0.0], "label": [1, 0]})
NOISY = pd.DataFrame({"text": ["n1", "n2", "n3", "n4"], "target": [1.0, 0.0, 1.0, 0.0], "label": [1, 0, 1, 0],
                      "noisy_label": [1, 1, 0, 0], "noisy_target": [0.9, 0.6, 0.3, 0.0]})


def _run(name, **kw):
    return train(name, Recorder, CLEAN, NOISY, **kw).calls


def test_inputs_of_each_strategy():
    assert _run("clean") == [("fit", ["c1", "c2"], pytest.approx(np.array([1, 0])), None)]
    (kind, X, y, w), = _run("noisy")
    assert X == ["n1", "n2", "n3", "n4"] and y.tolist() == [1, 1, 0, 0] and w is None  # noisy labels
    (kind, X, y, w), = _run("union")
    assert X == ["c1", "c2", "n1", "n2", "n3", "n4"] and y.tolist() == [1, 0, 1, 1, 0, 0]
    (kind, X, y, w), = _run("union-weighted")
    assert w.tolist() == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0]  # 4 noisy / 2 clean
    (kind, X, y, w), = _run("union-weighted", clean_weight=5.0)
    assert w.tolist()[:2] == [5.0, 5.0]
    calls = _run("pretrain-finetune")
    assert [c[0] for c in calls] == ["fit", "partial_fit"]
    assert calls[0][1] == ["c1", "c2", "n1", "n2", "n3", "n4"] and calls[1][1] == ["c1", "c2"]


def test_soft_duplicates_noisy_rows_with_weights():
    (kind, X, y, w), = _run("soft")
    # clean rows (weight 1), then each noisy row as toxic with weight p and non-toxic with 1 - p;
    # the zero-weight copy of n4 (p = 0) is dropped
    assert X == ["c1", "c2", "n1", "n2", "n3", "n1", "n2", "n3", "n4"]
    assert y.tolist() == [1, 0, 1, 1, 1, 0, 0, 0, 0]
    np.testing.assert_allclose(w, [1, 1, 0.9, 0.6, 0.3, 0.1, 0.4, 0.7, 1.0])


def test_missing_sets_are_reported():
    with pytest.raises(HarmscopeError, match="needs a noisy training set"):
        train("union", Recorder, CLEAN, None)
    with pytest.raises(HarmscopeError, match="needs a clean training set"):
        train("pretrain-finetune", Recorder, None, NOISY)
    with pytest.raises(HarmscopeError, match="unknown strategy"):
        train("magic", Recorder, CLEAN, NOISY)
    assert train("noisy", Recorder, None, NOISY).calls  # noisy alone needs no clean set


@pytest.fixture(scope="module")
def small():
    return split_corpus(make_corpus(1200, seed=0), clean_frac=0.1, eval_frac=0.3, seed=0)


def test_filter_flags_mostly_true_label_errors(small):
    noisy = small["noisy"]
    flag, _ = confident_disagreements(TfidfClassifier, small["clean"], noisy, seed=0)
    wrong = (noisy["noisy_label"] != noisy["label"]).to_numpy()
    precision = wrong[flag].mean()
    recall = flag[wrong].mean()
    assert flag.sum() > 50 and precision > 0.8 and recall > 0.3


def test_every_strategy_runs_with_tfidf(small):
    ev = small["eval"]
    aucs = {}
    for name in STRATEGIES.names():
        m = train(name, TfidfClassifier, small["clean"], small["noisy"], seed=0)
        assert m.card_["strategy"] == name
        aucs[name] = roc_auc_score(ev["label"], m.predict_proba(ev)[:, 1])
    assert min(aucs.values()) > 0.85
    # the paper's headline: pretraining on everything then fine-tuning on clean beats noisy labels
    assert aucs["pretrain-finetune"] > aucs["noisy"] + 0.02
    assert aucs["pretrain-finetune"] > aucs["union"]
    assert train("filtered", TfidfClassifier, small["clean"], small["noisy"]).card_["filtered_out"] > 0


def test_strategies_are_looked_up_through_the_registry():
    from harmscope.classifiers.strategies import strategy_names

    assert strategy_names() == ["clean", "noisy", "union", "union-weighted", "pretrain-finetune", "filtered", "soft"]
    assert "soft" in STRATEGIES and "nope" not in STRATEGIES
    assert STRATEGIES.get("union").description == "Clean and noisy pooled, every row weight 1."
    with pytest.raises(HarmscopeError, match=r"unknown strategy 'nope' \(known: clean, noisy"):
        train("nope", TfidfClassifier, None, None)
