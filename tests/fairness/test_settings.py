"""BiasSettings: thresholds, bootstrap size and seed given once, with the same results as keywords."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmscope.fairness import BiasSettings, bias_metrics
from harmscope.fairness.counterfactual import counterfactual_report


def _data(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    g = pd.DataFrame({"a": (rng.random(n) < 0.4).astype(float), "b": (rng.random(n) < 0.3).astype(float)})
    s = np.clip(0.2 * y + 0.7 * rng.random(n) + 0.1 * g["a"].to_numpy(), 0, 1)
    return y.astype(float), s, g


def test_settings_object_equals_keywords():
    y, s, g = _data()
    cfg = BiasSettings(n_boot=60, seed=3, min_size=20, threshold=0.5)
    a = bias_metrics(y, s, g, cfg)
    b = bias_metrics(y, s, g, n_boot=60, seed=3, min_size=20, threshold=0.5)
    pd.testing.assert_frame_equal(a.per_group, b.per_group)
    assert a.overall == b.overall and a.params == b.params == cfg.params()
    # an override replaces one field of the object and nothing else
    c = bias_metrics(y, s, g, cfg, seed=4)
    assert c.params == {**cfg.params(), "seed": 4}
    assert c.overall["overall_auc_lo"] != a.overall["overall_auc_lo"]  # another seed, other resamples


def test_settings_are_checked_once():
    with pytest.raises(TypeError, match="unknown bias setting"):
        BiasSettings.of(n_boots=10)
    with pytest.raises(ValueError, match="n_boot"):
        BiasSettings(n_boot=-1)
    with pytest.raises(ValueError, match="level"):
        BiasSettings(level=1.5)
    assert BiasSettings().decision_threshold == 0.5 and BiasSettings(threshold=0.3).decision_threshold == 0.3
    cfg = BiasSettings(n_boot=120, chunk_size=50)
    assert [c.size for c in cfg.chunks()] == [50, 50, 20]


def test_counterfactual_report_takes_the_settings():
    sents = pd.DataFrame({"axis": ["x"] * 4, "term": ["p", "q", "p", "q"], "template_id": [0, 0, 1, 1],
                          "preferred": [True] * 4, "text": ["."] * 4})
    scores = np.array([0.1, 0.6, 0.2, 0.8])
    d1, a1 = counterfactual_report(sents, scores, BiasSettings(n_boot=40, seed=2, threshold=0.5))
    d2, a2 = counterfactual_report(sents, scores, n_boot=40, seed=2, threshold=0.5)
    assert d1 == d2 and a1 == a2
    assert a1[0]["gap"] == pytest.approx(0.55)  # mean(q) - mean(p) = 0.7 - 0.15
