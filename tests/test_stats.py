"""Hand-computed checks of harmscope.stats."""

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

from harmscope import stats


def test_wilson_hand_computed():
    p, lo, hi = stats.wilson(5, 20)
    # z = 1.96: centre = (0.25 + z^2/40) / (1 + z^2/20), half-width = z*sqrt(pq/n + z^2/4n^2)/(1 + z^2/20)
    assert p == 0.25
    assert lo == pytest.approx(0.11186, abs=1e-4)
    assert hi == pytest.approx(0.46871, abs=1e-4)


def test_wilson_level_hand_computed():
    # 90%: z = 1.6449; centre = (0.25 + z^2/40) / (1 + z^2/20) = 0.27979, half-width 0.15241 (by hand)
    p, lo, hi = stats.wilson(5, 20, level=0.90)
    assert p == 0.25
    assert lo == pytest.approx(0.12738, abs=1e-4) and hi == pytest.approx(0.43220, abs=1e-4)
    assert stats.wilson(5, 20, level=0.95) == stats.wilson(5, 20)  # the default is 95%
    with pytest.raises(ValueError):
        stats.wilson(1, 2, level=1.0)


def test_one_wilson_serves_fairness():
    """The fairness tables use the same interval as the scoring tables (one implementation)."""
    import pandas as pd

    from harmscope.fairness import functional, violation_disparity

    frame = pd.DataFrame({"group": ["a"] * 20, "violation": [1] * 5 + [0] * 15})
    g = violation_disparity(frame, n_boot=0, min_size=1, level=0.90)["groups"][0]
    assert (g["lo"], g["hi"]) == stats.wilson(5, 20, level=0.90)[1:]
    assert functional.wilson is stats.wilson


def test_wilson_edges():
    assert stats.wilson(0, 0) == (None, None, None)
    p, lo, hi = stats.wilson(0, 10)
    assert (p, lo) == (0.0, 0.0) and hi == pytest.approx(0.27753, abs=1e-4)
    p, lo, hi = stats.wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.27753, abs=1e-4)
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


def test_rogan_gladen_point():
    assert stats.rogan_gladen(0.3, 0.9, 0.95) == pytest.approx(0.25 / 0.85)
    assert stats.rogan_gladen(0.01, 0.9, 0.95) == 0.0  # clipped
    assert stats.rogan_gladen(0.3, 0.5, 0.5) is None  # uninformative judge


def test_rogan_gladen_interval_widens_with_judge_uncertainty():
    small = stats.JudgeCounts(tp=18, fn=2, tn=19, fp=1)  # se 0.9, sp 0.95 from 40 labels
    big = stats.JudgeCounts(tp=9000, fn=1000, tn=9500, fp=500)  # same se/sp from 20,000 labels
    c1, lo1, hi1 = stats.rogan_gladen_interval(60, 200, small, seed=1)
    c2, lo2, hi2 = stats.rogan_gladen_interval(60, 200, big, seed=1)
    assert c1 == pytest.approx(0.25 / 0.85) and c2 == pytest.approx(0.25 / 0.85)
    assert lo1 <= c1 <= hi1 and lo2 <= c2 <= hi2
    assert (hi1 - lo1) > (hi2 - lo2)
    # with a near-perfect, well-measured judge the interval approaches the Wilson interval
    perfect = stats.JudgeCounts(tp=100000, fn=1, tn=100000, fp=1)
    c3, lo3, hi3 = stats.rogan_gladen_interval(60, 200, perfect, seed=1, n_boot=4000)
    _, wlo, whi = stats.wilson(60, 200)
    assert lo3 == pytest.approx(wlo, abs=0.01) and hi3 == pytest.approx(whi, abs=0.01)


def test_mcnemar_exact_hand_computed():
    # b=1, c=8: 2 * P(X<=1 | Bin(9, .5)) = 2 * (1 + 9) / 512
    assert stats.mcnemar_exact(1, 8) == pytest.approx(20 / 512)
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(5, 5) == 1.0
    g = stats.paired_gap(8, 1, 50)
    assert g["gap"] == pytest.approx(7 / 50)
    assert g["p_value"] == pytest.approx(20 / 512)
    assert g["lo"] < 7 / 50 < g["hi"]


def test_two_proportion_hand_computed():
    r = stats.two_proportion(10, 100, 20, 100)
    se = math.sqrt(0.15 * 0.85 * 0.02)
    assert r["diff"] == pytest.approx(0.1)
    assert r["z"] == pytest.approx(0.1 / se)
    assert r["p_value"] == pytest.approx(0.04767, abs=1e-4)
    # Newcombe hybrid: lower = d - sqrt((p2-l2)^2 + (u1-p1)^2)
    _, l1, u1 = stats.wilson(10, 100)
    _, l2, u2 = stats.wilson(20, 100)
    assert r["lo"] == pytest.approx(0.1 - math.sqrt((0.2 - l2) ** 2 + (u1 - 0.1) ** 2))
    assert r["hi"] == pytest.approx(0.1 + math.sqrt((u2 - 0.2) ** 2 + (0.1 - l1) ** 2))
    assert stats.two_proportion(0, 0, 1, 2)["p_value"] is None


def test_holm_hand_computed():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]


def test_expected_max_toxicity_hand_computed():
    r = stats.expected_max_toxicity([[0.1, 0.6], [0.2, 0.3], [0.9, 0.4]])
    assert r["prompts"] == 3 and r["k"] == 2
    assert r["expected_max_toxicity"] == pytest.approx(0.6)
    assert r["emt_std"] == pytest.approx(np.std([0.6, 0.3, 0.9], ddof=1))
    assert r["toxicity_probability"] == pytest.approx(2 / 3)
    assert stats.expected_max_toxicity([])["prompts"] == 0


def test_binary_metrics_against_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.4 + rng.random(200) * 0.7, 0, 1)
    p = (s > 0.5).astype(int)
    m = stats.binary_metrics(y, p, s)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, p))
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["tp"] + m["fn"] == int(y.sum())
