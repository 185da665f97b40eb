"""violation_disparity: Wilson intervals, chi-square against scipy, bootstrap gap, skips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from harmscope.errors import InputError
from harmscope.fairness import violation_disparity
from harmscope.stats import wilson


def frame() -> pd.DataFrame:
    rows = (
        [("a", 1)] * 12
        + [("a", 0)] * 28
        + [("b", 1)] * 25
        + [("b", 0)] * 25
        + [("c", 1)] * 9
        + [("c", 0)] * 21
    )
    rows += [("d", 1)] * 3 + [("d", None)] * 4  # small group, abstentions dropped
    return pd.DataFrame(rows, columns=["group", "violation"])


def test_rates_and_wilson() -> None:
    r = violation_disparity(frame(), n_boot=300, seed=0)
    by = {g["group"]: g for g in r["groups"]}
    assert (by["a"]["k"], by["a"]["n"], by["a"]["rate"]) == (12, 40, 0.3)
    assert (by["b"]["k"], by["b"]["n"]) == (25, 50)
    # Wilson 95% for 25/50, by hand: centre 0.5, half-width z*sqrt(.25/50 + z^2/10000)/(1 + z^2/50)
    z = 1.959963984540054
    half = z * np.sqrt(0.25 / 50 + z * z / 10000) / (1 + z * z / 50)
    assert by["b"]["lo"] == pytest.approx(0.5 - half) and by["b"]["hi"] == pytest.approx(0.5 + half)
    assert wilson(0, 10)[1] == 0.0 and wilson(0, 10)[2] == pytest.approx(0.27753, abs=1e-4)
    assert r["n_dropped"] == 4
    assert r["skipped"] == [{"group": "d", "n": 3, "reason": "n=3 below min_size=10"}]


def test_chi_square_matches_scipy() -> None:
    r = violation_disparity(frame(), n_boot=0)
    table = np.array([[12, 28], [25, 25], [9, 21]])  # d is below min_size, so left out
    stat, p, dof, _ = chi2_contingency(table, correction=False)
    assert r["chi2"]["statistic"] == pytest.approx(stat)
    assert r["chi2"]["p_value"] == pytest.approx(p)
    assert r["chi2"]["dof"] == dof == 2


def test_max_gap_with_ci() -> None:
    r = violation_disparity(frame(), n_boot=500, seed=3)
    g = r["max_gap"]
    assert g["value"] == pytest.approx(0.5 - 0.3)
    assert (g["high_group"], g["low_group"]) == ("b", "a")
    assert g["lo"] < g["value"] < g["hi"]
    again = violation_disparity(frame(), n_boot=500, seed=3)
    assert again["max_gap"] == g


def test_undefined_and_bad_input() -> None:
    same = pd.DataFrame({"group": ["a"] * 20 + ["b"] * 20, "violation": [0] * 40})
    r = violation_disparity(same, n_boot=50)
    assert r["chi2"]["statistic"] is None and "same outcome" in r["chi2"]["reason"]
    assert r["max_gap"]["value"] == 0.0
    one = violation_disparity(same[same.group == "a"], n_boot=10)
    assert one["max_gap"]["value"] is None
    with pytest.raises(InputError, match=r"row 2, field 'violation': outcome 'maybe'"):
        violation_disparity(pd.DataFrame({"group": ["a", "b"], "violation": [1, "maybe"]}))
    with pytest.raises(InputError, match="column 'grp' not found"):
        violation_disparity(same, group_col="grp")
