"""audit(): biased classifiers ranked worst, fairlearn agreement, intersections, outputs, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from harmscope.errors import InputError
from harmscope.fairness import audit
from harmscope.fairness.audit import rank_worst, roc_points, write_audit
from harmscope.types import AuditResult

GROUPS = ["muslim", "christian", "female", "male"]
TOXIC = ["idiot", "stupid", "disgusting", "hate", "trash"]
NICE = ["kind", "lovely", "helpful", "friendly", "great"]


def comments(n: int, seed: int, biased: str | None = None) -> pd.DataFrame:
    """Synthetic comments: toxicity from the adjective; identity from the group word.

    With ``biased``, that group's word appears mostly in toxic comments (as in skewed training data).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        g = rng.choice(GROUPS)
        p_tox = 0.9 if g == biased else 0.3
        tox = rng.random() < p_tox
        adj = rng.choice(
            TOXIC if tox == (rng.random() < 0.85) else NICE
        )  # the wording misleads 15% of the time
        filler = rng.choice(["today", "again", "here", "online", "now"])
        rows.append(
            {
                "text": f"the {g} person is {adj} {filler}",
                "target": float(tox),
                **{c: float(c == g) for c in GROUPS},
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["group_cols"] = GROUPS
    return df


@pytest.fixture(scope="module")
def biased_model():
    train = comments(1500, seed=1, biased="muslim")
    return make_pipeline(CountVectorizer(), LogisticRegression(C=1.0, max_iter=500)).fit(
        train["text"], train["target"]
    )


@pytest.fixture(scope="module")
def result(biased_model) -> AuditResult:
    test = comments(1200, seed=2)
    return audit(biased_model, test, n_boot=100, seed=0, min_size=20, counterfactual=False)


def test_biased_classifier_ranked_worst_on_its_group(result: AuditResult) -> None:
    worst_bpsn = [w for w in result.worst_groups if w["metric"] == "bpsn_auc"]
    assert worst_bpsn[0]["subgroup"] == "muslim"  # non-toxic mentions of the group score too high
    jig = {r["subgroup"]: r for r in result.tables["jigsaw"]}
    # the gap is clear: the muslim BPSN interval lies below every other group's estimate
    assert jig["muslim"]["bpsn_auc_hi"] < min(jig[g]["bpsn_auc"] for g in GROUPS if g != "muslim")
    # and the same group gets the highest false-positive rate at the threshold
    mf = {r["group"]: r for r in result.tables["metricframe"]}
    assert max(mf, key=lambda g: mf[g]["fpr"]) == "muslim"
    # its toxic comments are not missed: its BNSP is the highest
    assert max(jig, key=lambda g: jig[g]["bnsp_auc"]) == "muslim"


def test_metricframe_agrees_with_bias_metrics(result: AuditResult) -> None:
    jig = {r["subgroup"]: r for r in result.tables["jigsaw"]}
    mf = {r["group"]: r for r in result.tables["metricframe"]}
    for g in GROUPS:
        assert mf[g]["auc"] == pytest.approx(jig[g]["subgroup_auc"], abs=1e-12)
        assert mf[g]["fpr"] == pytest.approx(jig[g]["fpr"], abs=1e-12)
        assert mf[g]["fnr"] == pytest.approx(jig[g]["fnr"], abs=1e-12)
        assert mf[g]["selection_rate"] == pytest.approx(jig[g]["selection_rate"], abs=1e-12)
        assert mf[g]["count"] == jig[g]["n"]
    o = result.overall
    fpr = [mf[g]["fpr"] for g in GROUPS]
    fnr = [mf[g]["fnr"] for g in GROUPS]
    sel = [mf[g]["selection_rate"] for g in GROUPS]
    # fairlearn's DP / EO differences equal the spread of the per-group rates
    assert o["dp_difference"] == pytest.approx(max(sel) - min(sel))
    assert o["eo_difference"] == pytest.approx(max(max(fpr) - min(fpr), max(fnr) - min(fnr)))
    assert o["metricframe"]["fpr_difference"] == pytest.approx(max(fpr) - min(fpr))
    assert o["metricframe"]["fpr_ratio"] == pytest.approx(min(fpr) / max(fpr))
    assert o["dp_difference_lo"] <= o["dp_difference"] <= o["dp_difference_hi"]
    for k in (
        "overall_auc",
        "final_score",
        "power_mean_bpsn_auc",
        "power_mean_bnsp_auc",
        "power_mean_subgroup_auc",
    ):
        assert 0.0 <= o[k] <= 1.0


def test_intersections_by_hand() -> None:
    # 4 cells of religion x gender; row i belongs to exactly one cell
    rng = np.random.default_rng(0)
    n = 400
    rel = np.array(["muslim", "christian"])[np.arange(n) % 2]
    gen = np.array(["female", "male"])[(np.arange(n) // 2) % 2]
    y = (rng.random(n) < 0.4).astype(float)
    s = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, n), 0, 1)
    df = pd.DataFrame({"target": y, **{g: (rel == g) | (gen == g) for g in GROUPS}}).astype(float)
    res = audit(s, df, group_cols=GROUPS, n_boot=50, min_size=50, counterfactual=False)
    rows = res.tables["intersections"]
    assert {(r["group_a"], r["group_b"]) for r in rows} == {
        (g, r) for g in ("female", "male") for r in ("christian", "muslim")
    }
    for r in rows:
        m = (gen == r["group_a"]) & (rel == r["group_b"])
        assert r["count"] == m.sum() == 100
        yb, sb = y[m] >= 0.5, s[m]
        assert r["fpr"] == pytest.approx(((sb >= 0.5) & ~yb).sum() / (~yb).sum())
        from sklearn.metrics import roc_auc_score

        assert r["auc"] == pytest.approx(roc_auc_score(yb, sb))
        assert r["auc_lo"] <= r["auc"] <= r["auc_hi"]
    # a cell below min_size is listed with its reason
    small = audit(s, df, group_cols=GROUPS, n_boot=0, min_size=150, counterfactual=False)
    assert all(r["reason"] == "skipped: n=100 below min_size=150" for r in small.tables["intersections"])


def test_scores_and_single_class_errors_and_reasons() -> None:
    df = comments(200, seed=3)
    with pytest.raises(InputError, match="got 199 scores for 200 rows"):
        audit(np.zeros(199), df, n_boot=0, counterfactual=False)
    # a group with only non-toxic rows: undefined metrics with reasons, not a crash
    df["nice_only"] = ((df["target"] == 0) & (df["muslim"] == 1)).astype(float)
    res = audit(
        np.linspace(0, 1, 200),
        df,
        group_cols=[*GROUPS, "nice_only"],
        n_boot=20,
        min_size=5,
    )
    row = next(r for r in res.tables["jigsaw"] if r["subgroup"] == "nice_only")
    assert row["subgroup_auc"] is None and "no toxic rows in subgroup" in row["reason"]
    assert any("counterfactual swaps skipped" in n for n in res.notes)


def test_roc_points_downsampled() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    fpr, tpr = roc_points(y, s, n_points=5)
    assert list(fpr) == [0, 0.25, 0.5, 0.75, 1.0]
    assert tpr[0] == pytest.approx(2 / 3) and tpr[-1] == 1.0  # two positives above every negative
    assert np.all(np.diff(tpr) >= 0)
    assert roc_points(np.ones(3), s[:3]) is None


def test_write_audit_and_json_roundtrip(result: AuditResult, tmp_path) -> None:
    paths = write_audit(result, tmp_path)
    names = {p.name for p in paths}
    assert {
        "audit.json",
        "jigsaw.csv",
        "metricframe.csv",
        "intersections.csv",
        "roc.csv",
        "worst_groups.csv",
    } <= names
    back = AuditResult.model_validate(json.loads((tmp_path / "audit.json").read_text()))
    assert back.overall["final_score"] == pytest.approx(result.overall["final_score"])
    assert len(pd.read_csv(tmp_path / "jigsaw.csv")) == len(GROUPS)


def test_rank_worst_orders_by_metric() -> None:
    pg = pd.DataFrame(
        {
            "subgroup": list("abc"),
            "n": [50, 60, 70],
            "bpsn_auc": [0.9, 0.6, np.nan],
            "bnsp_auc": [0.7, 0.8, 0.75],
            "subgroup_auc": [0.8, 0.8, 0.8],
        }
    )
    for m in ("bpsn_auc", "bnsp_auc", "subgroup_auc"):
        pg[m + "_lo"], pg[m + "_hi"] = pg[m] - 0.1, pg[m] + 0.1
    w = rank_worst(pg, k=2)
    assert [(x["metric"], x["subgroup"]) for x in w if x["metric"] != "subgroup_auc"] == [
        ("bpsn_auc", "b"),
        ("bpsn_auc", "a"),
        ("bnsp_auc", "a"),
        ("bnsp_auc", "c"),
    ]


def test_cli_audit_scores_col(tmp_path) -> None:
    from harmscope.cli import main

    df = comments(300, seed=4).drop(columns=["text"])
    df["score"] = np.clip(0.2 + 0.6 * df["target"] + 0.1 * np.sin(np.arange(300)), 0, 1)
    df.to_csv(tmp_path / "d.csv", index=False)
    run = CliRunner().invoke(
        main,
        [
            "audit",
            "--scores-col",
            "score",
            "--data",
            str(tmp_path / "d.csv"),
            "--group-cols",
            ",".join(GROUPS),
            "--n-boot",
            "30",
            "--min-size",
            "20",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert run.exit_code == 0, run.output
    assert "final bias score" in run.output and "Groups treated worst" in run.output
    res = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert res["params"]["n_boot"] == 30 and len(res["tables"]["jigsaw"]) == 4

    df.loc[4, "target"] = 1.7
    df.to_csv(tmp_path / "bad.csv", index=False)
    bad = CliRunner().invoke(
        main,
        [
            "audit",
            "--scores-col",
            "score",
            "--data",
            str(tmp_path / "bad.csv"),
            "--group-cols",
            "muslim",
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert bad.exit_code == 2
    assert f"error: {tmp_path / 'bad.csv'}: row 5, field 'target': label 1.7 is outside [0, 1]" in bad.output


def test_audit_with_callable_counterfactual_and_functional(tmp_path) -> None:
    def scorer(texts: list[str]) -> np.ndarray:  # flags toxic words, and wrongly any sentence naming Muslims
        return np.array([0.9 if any(w in t.lower() for w in [*TOXIC, "muslim"]) else 0.1 for t in texts])

    suite = pd.DataFrame(
        {
            "text": ["you are trash", "muslim neighbours are kind", "what a lovely day"],
            "gold": [1, 0, 0],
            "functionality": ["insult", "identity-neutral", "neutral"],
            "target": ["none", "muslim", "none"],
        }
    )
    df = comments(300, seed=5)
    res = audit(scorer, df, n_boot=30, min_size=20, functional=suite, lexicon=None)
    cf = {(r["axis"], r["term"]): r for r in res.tables["counterfactual"]}
    muslim = [r for (axis, term), r in cf.items() if term.lower() == "muslim"]
    assert muslim and all(r["flagged"] and r["mean_score"] == pytest.approx(0.9) for r in muslim)
    axes = {r["axis"]: r for r in res.tables["counterfactual_axes"]}
    assert axes[muslim[0]["axis"]]["highest"].lower() == "muslim"
    fun = {(r["by"], r["name"]): r for r in res.tables["functional"]}
    assert fun[("overall", "all")]["accuracy"] == pytest.approx(2 / 3)
    assert fun[("functionality", "identity-neutral")]["accuracy"] == 0.0
    assert fun[("target", "muslim")]["n"] == 1
    assert any("score as toxic" in n for n in res.notes)
    assert {"counterfactual.csv", "counterfactual_axes.csv", "functional.csv"} <= {
        p.name for p in write_audit(res, tmp_path)
    }


def test_cli_reason_compaction() -> None:
    from harmscope.fairness.commands import _short_reason

    r = "subgroup_auc undefined: no toxic rows in subgroup; bnsp_auc undefined: no toxic rows in subgroup"
    assert _short_reason(r) == "no toxic rows in subgroup (subgroup_auc, bnsp_auc undefined)"
    assert _short_reason("skipped: n=3 below min_size=30") == "skipped: n=3 below min_size=30"
    assert _short_reason(None) == ""
