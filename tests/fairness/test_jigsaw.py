"""Borkan et al. bias metrics: hand-computed values, sklearn agreement, bootstrap behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from harmscope.errors import InputError
from harmscope.fairness import bias_chunk, bias_metrics, bootstrap_chunks, power_mean, prepare_bias, rank_auc

# subgroup "a": toxic 0.9, 0.3; non-toxic 0.2, 0.5
# background:   toxic 0.7, 0.5; non-toxic 0.4, 0.35, 0.05   (0.5 is tied across a toxic and a non-toxic row)
SCORES = [0.9, 0.3, 0.2, 0.5, 0.7, 0.5, 0.4, 0.35, 0.05]
LABELS = [1, 1, 0, 0, 1, 1, 0, 0, 0]
IN_A = [1, 1, 1, 1, 0, 0, 0, 0, 0]


def small() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    return np.array(LABELS, float), np.array(SCORES), pd.DataFrame({"a": np.array(IN_A, float)})


def test_hand_computed_auc_family() -> None:
    y, s, g = small()
    r = bias_metrics(y, s, g, n_boot=0, min_size=1)
    row = r.per_group.iloc[0]
    # subgroup: (0.9>0.2, 0.9>0.5, 0.3>0.2, 0.3<0.5) -> 3/4
    assert row["subgroup_auc"] == pytest.approx(0.75)
    # BPSN: bg toxic {0.7, 0.5} vs sg non-toxic {0.2, 0.5}: 1 + 1 + 1 + 0.5 (tie) = 3.5 / 4
    assert row["bpsn_auc"] == pytest.approx(0.875)
    # BNSP: sg toxic {0.9, 0.3} vs bg non-toxic {0.4, 0.35, 0.05}: 3 + 1 = 4 / 6
    assert row["bnsp_auc"] == pytest.approx(4 / 6)
    # positive AEG: sg toxic above bg toxic in 2 of 4 pairs -> 0.5 - 0.5 = 0
    assert row["aeg_pos"] == pytest.approx(0.0)
    # negative AEG: sg non-toxic above bg non-toxic in 1 + 3 = 4 of 6 pairs -> 0.5 - 4/6
    assert row["aeg_neg"] == pytest.approx(0.5 - 4 / 6)
    # overall: 5 + 2 + 5 + 4.5 = 16.5 of 20 pairs
    assert r.overall["overall_auc"] == pytest.approx(16.5 / 20)
    # one group: each power mean is that group's value
    assert r.overall["final_score"] == pytest.approx(0.25 * (16.5 / 20 + 0.75 + 0.875 + 4 / 6))
    assert row["reason"] is None


def test_power_mean_hand_values() -> None:
    assert power_mean([0.5, 1.0], -5) == pytest.approx(((2**5 + 1) / 2) ** (-1 / 5))
    assert power_mean([0.8, 0.8, 0.8], -5) == pytest.approx(0.8)
    assert power_mean([0.6, np.nan, 0.9], -5) == pytest.approx(((0.6**-5 + 0.9**-5) / 2) ** -0.2)
    # p = -5 is pulled towards the worst group
    assert power_mean([0.5, 0.9, 0.9, 0.9], -5) < np.mean([0.5, 0.9, 0.9, 0.9])


def random_frame(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    s = np.round(rng.random(n) * 0.8 + 0.25 * y, 2)  # rounding makes many ties
    g = pd.DataFrame(
        {
            "x": rng.random(n) * (rng.random(n) < 0.3),
            "y": (rng.random(n) < 0.15).astype(float),
            "z": (rng.random(n) < 0.5).astype(float),
        }
    )
    return y.astype(float), s, g


def test_agrees_with_sklearn_on_pieces() -> None:
    y, s, g = random_frame()
    r = bias_metrics(y, s, g, n_boot=0, min_size=1)
    yb = y >= 0.5
    assert r.overall["overall_auc"] == pytest.approx(roc_auc_score(yb, s), abs=1e-12)
    assert rank_auc(yb, s) == pytest.approx(roc_auc_score(yb, s), abs=1e-12)
    for _, row in r.per_group.iterrows():
        m = g[row["subgroup"]].to_numpy() > 0.5
        assert row["n"] == m.sum()
        assert row["subgroup_auc"] == pytest.approx(roc_auc_score(yb[m], s[m]), abs=1e-12)
        bpsn = (m & ~yb) | (~m & yb)
        bnsp = (m & yb) | (~m & ~yb)
        assert row["bpsn_auc"] == pytest.approx(roc_auc_score(yb[bpsn], s[bpsn]), abs=1e-12)
        assert row["bnsp_auc"] == pytest.approx(roc_auc_score(yb[bnsp], s[bnsp]), abs=1e-12)
        # AEG from the Mann-Whitney U of subgroup vs background within each class
        from scipy.stats import mannwhitneyu

        for cls, col in ((True, "aeg_pos"), (False, "aeg_neg")):
            a, b = s[m & (yb == cls)], s[~m & (yb == cls)]
            expect = 0.5 - mannwhitneyu(a, b).statistic / (a.size * b.size)
            assert row[col] == pytest.approx(expect, abs=1e-12)


def test_undefined_metrics_have_reasons_not_crashes() -> None:
    y, s, g = small()
    g["only_neg"] = [0, 0, 1, 1, 0, 0, 1, 0, 0]  # three non-toxic rows, no toxic row
    r = bias_metrics(y, s, g, n_boot=20, min_size=1)
    row = r.per_group.set_index("subgroup").loc["only_neg"]
    assert np.isnan(row["subgroup_auc"]) and np.isnan(row["bnsp_auc"]) and np.isnan(row["aeg_pos"])
    assert "subgroup_auc undefined: no toxic rows in subgroup" in row["reason"]
    assert "bnsp_auc undefined" in row["reason"]
    assert np.isfinite(row["bpsn_auc"])  # sg negatives vs bg positives is defined
    assert row["bpsn_auc"] == pytest.approx(
        roc_auc_score([1, 1, 1, 1, 0, 0, 0], [0.9, 0.3, 0.7, 0.5, 0.2, 0.5, 0.4])
    )


def test_min_size_skips_with_reason() -> None:
    y, s, g = random_frame()
    r = bias_metrics(y, s, g, n_boot=10, min_size=120)
    row = r.per_group.set_index("subgroup").loc["y"]
    assert row["skipped"] and row["n"] < 120
    assert row["reason"] == f"skipped: n={row['n']} below min_size=120"
    assert np.isnan(row["subgroup_auc"])
    assert any("below min_size=120" in n for n in r.notes)
    sizes = (g > 0.5).sum()
    assert r.overall["n_groups_scored"] == int((sizes >= 120).sum()) == 1  # only "z" (about half the rows)


def test_bootstrap_ci_contains_point_and_narrows_with_n() -> None:
    widths = []
    for n in (400, 6400):
        y, s, g = random_frame(n=n, seed=11)
        r = bias_metrics(y, s, g, n_boot=200, seed=5, min_size=10)
        pg = r.per_group
        for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
            assert ((pg[m + "_lo"] <= pg[m]) & (pg[m] <= pg[m + "_hi"])).all()
        assert r.overall["final_score_lo"] <= r.overall["final_score"] <= r.overall["final_score_hi"]
        widths.append((pg["subgroup_auc_hi"] - pg["subgroup_auc_lo"]).mean())
    # 16x the data: intervals about 4x narrower
    assert widths[1] < widths[0] / 2.5


def test_same_seed_same_result_and_seed_matters() -> None:
    y, s, g = random_frame()
    a = bias_metrics(y, s, g, n_boot=120, seed=1, min_size=10)
    b = bias_metrics(y, s, g, n_boot=120, seed=1, min_size=10)
    c = bias_metrics(y, s, g, n_boot=120, seed=2, min_size=10)
    pd.testing.assert_frame_equal(a.per_group, b.per_group)
    assert not np.allclose(a.boot["bpsn_auc"], c.boot["bpsn_auc"])


def test_chunks_independent_of_worker_assignment() -> None:
    y, s, g = random_frame()
    serial = bias_metrics(y, s, g, n_boot=130, seed=4, min_size=10, chunk_size=20)
    chunks = bootstrap_chunks(130, 4, 20)
    assert [c.size for c in chunks] == [20] * 6 + [10]

    def scrambled(fn, cs):  # two "workers" that run the chunks in reverse, interleaved order
        done = {c.index: fn(c) for c in list(reversed(cs))[::2] + list(reversed(cs))[1::2]}
        return [done[i] for i in range(len(cs))]

    other = bias_metrics(y, s, g, n_boot=130, seed=4, min_size=10, chunk_size=20, map_chunks=scrambled)
    for k in serial.boot:
        np.testing.assert_array_equal(serial.boot[k], other.boot[k])
    # a chunk recomputed alone equals its slice of the full run
    data = prepare_bias(y, s, g)
    np.testing.assert_array_equal(bias_chunk(data, chunks[3])["bnsp_auc"], serial.boot["bnsp_auc"][60:80])


def test_threshold_rates_against_hand_counts() -> None:
    y, s, g = small()
    r = bias_metrics(y, s, g, n_boot=0, min_size=1, threshold=0.45)
    row = r.per_group.iloc[0]
    # subgroup a at 0.45: flagged 0.9 and 0.5 -> 2/4; non-toxic {0.2, 0.5}: FPR 1/2; toxic {0.9, 0.3}: FNR 1/2
    assert (row["selection_rate"], row["fpr"], row["fnr"]) == pytest.approx((0.5, 0.5, 0.5))


def test_bad_inputs_one_line_each() -> None:
    y, s, g = small()
    with pytest.raises(InputError, match=r"row 3, field 'label': label 1.5 is outside \[0, 1\]"):
        bias_metrics(np.r_[y[:2], 1.5, y[3:]], s, g, n_boot=0)
    with pytest.raises(InputError, match="got 8 scores for 9 rows"):
        bias_metrics(y, s[:-1], g, n_boot=0)
    with pytest.raises(InputError, match="identity column 'b' is empty"):
        bias_metrics(y, s, g.assign(b=np.nan), n_boot=0)
    with pytest.raises(InputError, match=r"row 2, column 'a': identity value 2 is outside"):
        bias_metrics(y, s, g.assign(a=[0, 2, 0, 0, 0, 0, 0, 0, 0]), n_boot=0)
    with pytest.raises(InputError, match="no identity columns"):
        bias_metrics(y, s, g[[]], n_boot=0)


def test_single_class_data_is_undefined_not_a_crash() -> None:
    y, s, g = small()
    r = bias_metrics(np.ones_like(y), s, g, n_boot=10, min_size=1)
    assert r.overall["overall_auc"] is None and r.overall["final_score"] is None
    assert any("every row is toxic" in n for n in r.notes)
    assert "subgroup_auc undefined: no non-toxic rows in subgroup" in r.per_group.iloc[0]["reason"]


def test_chunk_work_pickles_for_process_workers() -> None:
    import pickle
    from functools import partial

    y, s, g = random_frame(n=200)
    data = prepare_bias(y, s, g)
    (chunk,) = bootstrap_chunks(7, seed=9)
    fn = pickle.loads(pickle.dumps(partial(bias_chunk, data)))
    a = fn(pickle.loads(pickle.dumps(chunk)))
    b = bias_chunk(data, chunk)
    for k in b:
        np.testing.assert_array_equal(a[k], b[k])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans(), st.booleans()), min_size=4, max_size=60),
)
def test_property_matches_sklearn_with_ties(rows: list[tuple[int, bool, bool]]) -> None:
    s = np.array([r[0] / 6 for r in rows])  # few distinct values: many ties
    y = np.array([r[1] for r in rows])
    m = np.array([r[2] for r in rows])
    r = bias_metrics(y.astype(float), s, pd.DataFrame({"g": m.astype(float)}), n_boot=0, min_size=1)
    row = r.per_group.iloc[0]
    pieces = {
        "subgroup_auc": m,
        "bpsn_auc": (m & ~y) | (~m & y),
        "bnsp_auc": (m & y) | (~m & ~y),
    }
    for metric, sel in pieces.items():
        if 0 < y[sel].sum() < sel.sum():
            assert row[metric] == pytest.approx(roc_auc_score(y[sel], s[sel]), abs=1e-12)
        else:
            assert np.isnan(row[metric])
            assert f"{metric} undefined" in row["reason"] or row["reason"] == "skipped: n=0 below min_size=1"
