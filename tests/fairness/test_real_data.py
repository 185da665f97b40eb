"""Bias metrics on the shared public data: templated identity sets and ETHOS target groups."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline

from harmscope.fairness import audit, bias_metrics, power_mean, violation_disparity

CAI = "conversationai_unintended_bias"


def identity_lexicon(data_dir) -> dict[str, str]:
    """Neutral identity terms -> subtype from the madlibber words.csv."""
    w = pd.read_csv(data_dir / CAI / "madlibber_input_en_us" / "words.csv")
    w = w[(w["type"] == "identity") & (w["connotation"] == "neutral")]
    return {str(t).lower(): str(s) for t, s in zip(w["word"], w["subtype"], strict=True)}


def term_columns(texts: pd.Series, terms: list[str]) -> pd.DataFrame:
    """One 0/1 column per term found in the sentence (whole words, longest term first)."""
    order = sorted(terms, key=lambda t: (-len(t), t))
    pat = re.compile(r"\b(" + "|".join(map(re.escape, order)) + r")\b")
    cols = {t: np.zeros(len(texts)) for t in terms}
    for i, s in enumerate(texts.str.lower()):
        for m in pat.finditer(s):
            cols[m.group(1)][i] = 1.0
    return pd.DataFrame(cols, index=texts.index)


def templated(data_dir, name: str, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = data_dir / CAI / name
    df = pd.read_csv(path)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(df))[: 2 * n]
    train, test = df.iloc[idx[:n]], df.iloc[idx[n:]].reset_index(drop=True)
    return train, test


def fit_scores(train_text, train_y, test_text) -> np.ndarray:
    clf = make_pipeline(CountVectorizer(binary=True), LogisticRegression(C=0.5, max_iter=300))
    return clf.fit(train_text, train_y).predict_proba(test_text)[:, 1]


@pytest.mark.timeout(120)
def test_templated_identity_set(data_dir) -> None:
    lex = identity_lexicon(data_dir)
    train, test = templated(data_dir, "sentence_templates/en_sentence_templates.csv", 5000, seed=0)
    y = (test["toxicity"] == "toxic").astype(float).to_numpy()
    s = fit_scores(train["phrase"], train["toxicity"] == "toxic", test["phrase"])
    groups = term_columns(test["phrase"], list(lex))
    groups = groups.loc[:, groups.sum() > 0]
    r = bias_metrics(y, s, groups, n_boot=100, seed=0, min_size=40)
    pg = r.per_group.set_index("subgroup")
    # each sentence's group comes from its identity term: counts agree with a plain word count
    for term in ("lesbian", "muslim", "deaf", "elderly"):
        words = test["phrase"].str.lower().str.split()
        assert pg.loc[term, "n"] == sum(term in ws for ws in words)
    scored = pg[~pg["skipped"]]
    assert len(scored) >= 20
    yb = y >= 0.5
    for term in scored.index[:6]:
        m = groups[term].to_numpy() > 0.5
        assert scored.loc[term, "subgroup_auc"] == pytest.approx(roc_auc_score(yb[m], s[m]))
        bp = (m & ~yb) | (~m & yb)
        assert scored.loc[term, "bpsn_auc"] == pytest.approx(roc_auc_score(yb[bp], s[bp]))
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        v = scored[m].dropna().to_numpy()
        assert v.min() <= r.overall[f"power_mean_{m}"] <= v.mean()  # p = -5 sits between worst and mean
    o = r.overall
    expect = 0.25 * (
        o["overall_auc"] + o["power_mean_subgroup_auc"] + o["power_mean_bpsn_auc"] + o["power_mean_bnsp_auc"]
    )
    assert o["final_score"] == pytest.approx(expect)
    assert power_mean(scored["bpsn_auc"].to_numpy(), -5) == pytest.approx(o["power_mean_bpsn_auc"])


@pytest.mark.timeout(120)
def test_intersectional_templates(data_dir) -> None:
    lex = identity_lexicon(data_dir)
    train, test = templated(data_dir, "madlibber_output_en/intersectional_madlibs.csv", 3000, seed=1)
    test = test.rename(columns={"phrase": "text"})
    test["target"] = (test["toxicity"] == "toxic").astype(float)
    groups = term_columns(test["text"], list(lex))
    groups = groups.loc[:, groups.sum() >= 30]
    df = pd.concat([test[["text", "target"]], groups], axis=1)
    axes: dict[str, list[str]] = {}
    for c in groups.columns:
        axes.setdefault(lex[c], []).append(c)
    assert {"gender", "ethnicity"} <= set(axes)
    s = fit_scores(train["phrase"], train["toxicity"] == "toxic", test["text"])
    res = audit(
        s,
        df,
        group_cols=list(groups.columns),
        axes=axes,
        intersections=[("gender", "ethnicity")],
        n_boot=50,
        min_size=15,
        counterfactual=False,
    )
    rows = [r for r in res.tables["intersections"] if "auc" in r]  # cells at or above min_size
    assert rows
    for r in rows[:8]:
        m = (groups[r["group_a"]] > 0.5) & (groups[r["group_b"]] > 0.5)
        assert r["count"] == int(m.sum())
        yb = test.loc[m, "target"].to_numpy() >= 0.5
        if 0 < yb.sum() < len(yb):
            assert r["auc"] == pytest.approx(roc_auc_score(yb, s[m.to_numpy()]))


def ethos(data_dir) -> pd.DataFrame:
    b = pd.read_csv(data_dir / "ethos" / "Ethos_Dataset_Binary.csv", sep=";")
    m = pd.read_csv(data_dir / "ethos" / "Ethos_Dataset_Multi_Label.csv", sep=";")
    cols = ["gender", "race", "national_origin", "disability", "religion", "sexual_orientation"]
    look = m.drop_duplicates("comment").set_index("comment")[cols]
    g = look.reindex(b["comment"]).fillna(0.0).reset_index(drop=True)
    return pd.concat([b.rename(columns={"comment": "text", "isHate": "target"}), g], axis=1)


@pytest.mark.timeout(120)
def test_ethos_target_groups(data_dir) -> None:
    df = ethos(data_dir)
    cols = ["gender", "race", "national_origin", "disability", "religion", "sexual_orientation"]
    y = df["target"].to_numpy()
    clf = make_pipeline(CountVectorizer(min_df=2), LogisticRegression(C=0.5, max_iter=300))
    s = cross_val_predict(clf, df["text"], y >= 0.5, cv=5, method="predict_proba")[:, 1]
    r = bias_metrics(y, s, df[cols], n_boot=100, seed=0, min_size=20)
    pg = r.per_group.set_index("subgroup")
    yb = y >= 0.5
    # target groups are only annotated on hateful comments: no non-toxic rows in any subgroup
    for g in pg.index[~pg["skipped"]]:
        assert pg.loc[g, "n_neg"] == 0
        assert np.isnan(pg.loc[g, "subgroup_auc"]) and np.isnan(pg.loc[g, "bpsn_auc"])
        assert "subgroup_auc undefined: no non-toxic rows in subgroup" in pg.loc[g, "reason"]
        m = df[g].to_numpy() > 0.5
        bn = (m & yb) | (~m & ~yb)
        assert pg.loc[g, "bnsp_auc"] == pytest.approx(roc_auc_score(yb[bn], s[bn]))
        assert pg.loc[g, "bnsp_auc_lo"] <= pg.loc[g, "bnsp_auc"] <= pg.loc[g, "bnsp_auc_hi"]
    assert r.overall["final_score"] is None
    assert r.overall["overall_auc"] == pytest.approx(roc_auc_score(yb, s))
    # detection rate of hateful comments by main target group, as a violation-rate disparity
    hate = df[yb].copy()
    hate["group"] = hate[cols].idxmax(axis=1).where(hate[cols].max(axis=1) > 0.5)
    hate["violation"] = (s[yb] >= 0.5).astype(int)
    d = violation_disparity(hate, n_boot=200, seed=0, min_size=20)
    from scipy.stats import chi2_contingency

    used = [g for g in d["groups"] if g["n"] >= 20]
    table = np.array([[g["k"], g["n"] - g["k"]] for g in used])
    stat, p, dof, _ = chi2_contingency(table, correction=False)
    assert d["chi2"]["statistic"] == pytest.approx(stat) and d["chi2"]["p_value"] == pytest.approx(p)
    assert sum(g["n"] for g in d["groups"]) == int(hate["group"].notna().sum())
