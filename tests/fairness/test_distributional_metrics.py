"""Distributional metrics against hand-computed values and reference implementations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from harmscope.fairness import distributional as dist


def test_wasserstein_hand_value_and_scipy():
    # a = {0, 1}, b = {0.5}: half the mass moves 0.5 each way
    assert dist.wasserstein1([0, 1], [0.5]) == pytest.approx(0.5)
    # shifting a sample by c moves it by exactly c
    assert dist.wasserstein1([0.1, 0.4, 0.9], [1.1, 1.4, 1.9]) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(size=rng.integers(1, 12))
        b = rng.uniform(-1, 1, size=rng.integers(1, 12))
        assert dist.wasserstein1(a, b) == pytest.approx(wasserstein_distance(a, b), abs=1e-12)
    with pytest.raises(ValueError):
        dist.wasserstein1([], [1.0])


def test_holm_hand_values():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(., 2*0.03), max(., 1*0.04)
    assert dist.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert dist.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_axis_metrics_planted_gap():
    rng = np.random.default_rng(0)
    vals = np.r_[rng.normal(-0.5, 0.2, 30), rng.normal(0.2, 0.2, 30), rng.normal(0.2, 0.2, 30)]
    groups = ["cold"] * 30 + ["a"] * 30 + ["b"] * 30
    res = dist.axis_metrics(vals, groups, n_boot=400, n_perm=400, seed=1)
    by = {g["group"]: g for g in res["groups"]}
    # hand-computed means, differences, gap
    m = {g: vals[np.array(groups) == g].mean() for g in ("cold", "a", "b")}
    assert by["cold"]["mean"] == pytest.approx(m["cold"])
    assert by["cold"]["diff"] == pytest.approx(m["cold"] - vals[30:].mean())
    assert res["axis"]["max_gap"] == pytest.approx(max(m.values()) - min(m.values()))
    assert res["axis"]["lowest_group"] == "cold"
    # W1 of each group against the pooled scores, and the average
    assert by["a"]["w1"] == pytest.approx(wasserstein_distance(vals[30:60], vals))
    assert res["axis"]["avg_w1"] == pytest.approx(np.mean([by[g]["w1"] for g in by]))
    # the planted group: interval excludes zero, permutation p at its floor, Holm-adjusted still tiny
    c = by["cold"]
    assert c["diff_hi"] < 0 and c["lo"] <= c["mean"] <= c["hi"]
    assert c["p_value"] == pytest.approx(1 / 401)
    assert c["p_holm"] <= 3 / 401 + 1e-12
    assert res["axis"]["gap_p_value"] == pytest.approx(1 / 401)
    assert res["axis"]["gap_lo"] > 0
    assert dist.worst_group(res["groups"], "sentiment")["group"] == "cold"
    assert dist.worst_group(res["groups"], "toxicity")["group"] in ("a", "b")


def test_axis_metrics_no_gap_and_determinism():
    rng = np.random.default_rng(5)
    vals = rng.normal(0, 0.3, 120)
    groups = [f"g{i % 4}" for i in range(120)]
    r1 = dist.axis_metrics(vals, groups, n_boot=300, n_perm=500, seed=7)
    r2 = dist.axis_metrics(vals, groups, n_boot=300, n_perm=500, seed=7)
    assert r1 == r2
    assert min(g["p_holm"] for g in r1["groups"]) > 0.05
    assert r1["axis"]["gap_p_value"] > 0.05
    # small groups are left out and listed
    r3 = dist.axis_metrics([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 9.0],
                           ["a"] * 6 + ["b"] * 6 + ["tiny"], n_boot=50, n_perm=50)
    assert r3["skipped"] == ["tiny"] and {g["group"] for g in r3["groups"]} == {"a", "b"}


def test_gendered_counts_and_cooccurrence():
    assert dist.gendered_counts("She told her brother that he was late.") == (2, 2)
    assert dist.gendered_counts("SHE, herself; the Hero's man-servant") == (2, 1)  # hero's is not a listed word
    assert dist.gendered_counts("The nurse checked the chart.") == (0, 0)
    texts = ["She is kind. Her patients love her.", "The nurse was tired.",
             "He fixed the engine.", "His tools were his pride; he was a man of skill."]
    rows = dist.cooccurrence(texts, ["nurse", "nurse", "mechanic", "mechanic"], n_boot=200, seed=0)
    by = {r["occupation"]: r for r in rows}
    assert (by["nurse"]["female"], by["nurse"]["male"]) == (3, 0)
    assert by["nurse"]["log_ratio"] == pytest.approx(math.log(3.5 / 0.5))
    assert (by["mechanic"]["female"], by["mechanic"]["male"]) == (0, 5)
    assert by["mechanic"]["log_ratio"] == pytest.approx(math.log(0.5 / 5.5))
    assert by["nurse"]["lo"] <= by["nurse"]["log_ratio"] <= by["nurse"]["hi"]
    # sign test over replies: nurse 1 female-leaning reply of 1 leaning -> p = 1; mechanic 2 of 2 -> 0.5
    assert (by["nurse"]["female_leaning"], by["nurse"]["male_leaning"]) == (1, 0)
    assert by["nurse"]["p_value"] == pytest.approx(1.0) and by["mechanic"]["p_value"] == pytest.approx(0.5)
    many = dist.cooccurrence(["He said his piece."] * 8 + ["She left."] * 2 + ["They left."] * 3 + ["x"] * 7,
                             ["pilot"] * 20, n_boot=50)
    # 8 male- vs 2 female-leaning replies: two-sided binomial 2 * P(X <= 2 | 10, 0.5) = 2 * 56 / 1024
    assert many[0]["p_value"] == pytest.approx(2 * 56 / 1024)
    assert (many[0]["female"], many[0]["male"]) == (2, 16)


def test_verdict_rule():
    assert dist.verdict(0.3, 0.15, 0.45, 0.1) is True
    assert dist.verdict(0.3, 0.05, 0.55, 0.1) is False  # interval reaches below the threshold
    assert dist.verdict(-0.3, -0.45, -0.15, 0.1) is True
    assert dist.verdict(None, None, None, 0.1) is None


def test_vader_sentiment_direction():
    s = dist.sentiment(["What a wonderful, kind and happy person.", "A terrible, rude and hateful man.", ""])
    assert s[0] > 0.5 and s[1] < -0.5 and s[2] == 0.0


def test_tables_and_rule_verdicts_on_a_frame():
    from harmscope.rules import load_catalog

    rules = dict(load_catalog().rules)
    rng = np.random.default_rng(3)
    rows = []
    for g in ("A", "B", "C", "D"):
        for i in range(25):
            s = rng.normal(-0.6 if g == "C" else 0.3, 0.15)
            rows.append({"text": "x", "group": g, "group_axis": "religion", "kind": "story",
                         "rule_ids": ["stereotypes"], "sentiment": s, "toxicity": 0.01 + 0.001 * i})
    for i in range(12):
        rows.append({"text": "She said her shift was long." if i % 2 else "She smiled.", "group": None,
                     "group_axis": None, "kind": "occupation", "occupation": "nurse", "rule_ids": ["stereotypes"],
                     "sentiment": 0.0, "toxicity": 0.0})
    rep = pd.DataFrame(rows)
    t = dist.distributional_tables(rep, n_boot=200, n_perm=300, seed=0)
    sent = [a for a in t["dist_axes"] if a["measure"] == "sentiment"][0]
    assert sent["worst_group"] == "C" and sent["worst_diff_hi"] < 0
    assert t["dist_cooccurrence"][0]["occupation"] == "nurse" and t["dist_cooccurrence"][0]["biased"] is True
    v = dist.rule_verdicts(rep, rules, n_boot=200, n_perm=300, seed=0)
    s = [x for x in v if x["measure"] == "sentiment"][0]
    assert s["violation"] and s["worst_group"] == "C" and s["lo"] > s["threshold"]
    tox = [x for x in v if x["measure"] == "toxicity"][0]
    assert not tox["violation"]  # a 0.001-step trend is far below the threshold
    summ = dist.rule_summary(v)
    assert summ[0]["rule_id"] == "stereotypes" and summ[0]["violation"]
    # an instance-scope rule gets no distributional verdict
    assert not dist.rule_verdicts(rep.assign(rule_ids=[["insults"]] * len(rep)), rules, n_boot=50, n_perm=50)


def test_cluster_bootstrap_counts_repeated_samples_once():
    # 6 prompts per group, each answered 5 times identically: 6 independent units, not 30
    rng = np.random.default_rng(2)
    base = {g: rng.normal(0, 0.3, 6) for g in ("a", "b", "c")}
    vals, groups, clusters = [], [], []
    for g, xs in base.items():
        for j, x in enumerate(xs):
            vals += [x] * 5
            groups += [g] * 5
            clusters += [f"{g}{j}"] * 5
    indep = dist.axis_metrics(vals, groups, n_boot=400, n_perm=400, seed=0)
    clust = dist.axis_metrics(vals, groups, clusters=clusters, n_boot=400, n_perm=400, seed=0)
    # same point estimates; the cluster interval is wider (about sqrt(5) times)
    for a, b in zip(indep["groups"], clust["groups"], strict=True):
        assert a["mean"] == pytest.approx(b["mean"]) and b["clusters"] == 6
        assert (b["hi"] - b["lo"]) > 1.6 * (a["hi"] - a["lo"])
    # with 6 units per group the cluster permutation p is far larger than the naive one
    assert min(g["p_value"] for g in clust["groups"]) >= min(g["p_value"] for g in indep["groups"])
