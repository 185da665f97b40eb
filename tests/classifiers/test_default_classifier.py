"""The multi-head backend (toy data), the shipped default classifier (loads offline, shape, card,
size, small fixed real samples) and the clean-budget study helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.backends.multihead import MultiHeadClassifier, default_model_dir
from harmscope.errors import HarmscopeError, InputError

DATA = Path(os.environ.get("HARMSCOPE_DATA", "../shared/data"))
BAD = ["you idiot", "i hate you", "shut up moron", "stupid trash", "disgusting vermin"]
GOOD = ["nice day", "thank you friend", "lovely weather", "see you soon", "great game"]


def _toy(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    texts = [f"{rng.choice(BAD if v else GOOD)} number {i}" for i, v in enumerate(y)]
    insult = np.where(np.arange(n) % 3 == 0, np.nan, y * (np.arange(n) % 4 < 2))
    return pd.DataFrame({"text": texts, "toxicity": y.astype(float), "insult": insult})


# ---------------------------------------------------------------- the backend on toy data
def test_multihead_fit_masks_unknown_rows_and_round_trips(tmp_path):
    X = _toy()
    m = MultiHeadClassifier(heads=("toxicity", "insult"), use_embed=False).fit(X, None)
    # rows with NaN insult are left out of that head: 2/3 of rows known, 80% of those for training
    known = int(X["insult"].notna().sum())
    assert m.head_rows_["insult"]["train"] + m.head_rows_["insult"]["calibration"] == known
    assert m.head_rows_["toxicity"]["train"] + m.head_rows_["toxicity"]["calibration"] == len(X)
    p = m.predict_all(["you idiot number 5", "nice day number 6"])
    assert list(p.columns) == ["toxicity", "insult"] and p.shape == (2, 2)
    assert p["toxicity"][0] > 0.5 > p["toxicity"][1]
    m.save(tmp_path / "m", card={"threshold": 0.42})
    m2 = MultiHeadClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(m2.predict_all(["you idiot number 5"]).to_numpy(),
                               m.predict_all(["you idiot number 5"]).to_numpy(), atol=2e-3)  # float16 weights
    assert m2.predict(["you idiot number 5", "nice day number 6"]).tolist() == [1, 0]
    assert m2.card_["threshold"] == 0.42


def test_multihead_errors(tmp_path):
    X = _toy()
    X["insult"] = 0.0
    with pytest.raises(HarmscopeError, match="head 'insult' needs both classes"):
        MultiHeadClassifier(heads=("toxicity", "insult"), use_embed=False).fit(X, None)
    with pytest.raises(HarmscopeError, match="not fitted"):
        MultiHeadClassifier().predict_proba(["x"])
    m = MultiHeadClassifier(heads=("toxicity",), use_embed=False).fit(_toy(), None)
    m.save(tmp_path / "m")
    (tmp_path / "m" / "embed_coef.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="cannot read multihead weights"):
        MultiHeadClassifier.load(tmp_path / "m")


def test_stacker_uses_both_models_when_given_embeddings():
    X = _toy(200)
    rng = np.random.default_rng(1)
    E = rng.normal(size=(len(X), 384)).astype(np.float32)
    E[:, 0] += 3 * X["toxicity"].to_numpy()  # an informative embedding dimension
    m = MultiHeadClassifier(heads=("toxicity",)).fit(X, None, embeddings=E)
    assert m.stack_.shape == (1, 3) and m.stack_[0, 0] != 0 and m.stack_[0, 1] != 0
    z = m.decision_all(X.head(4), embeddings=E[:4])
    ze = E[:4].astype(float) @ m.embed_coef_[0] + m.embed_intercept_[0]
    zt = np.asarray(m.hash_.transform(X["text"].head(4).tolist()) @ m.tfidf_coef_[0].astype(float)).ravel() \
        + m.tfidf_intercept_[0]
    np.testing.assert_allclose(z[:, 0], m.stack_[0, 0] * ze + m.stack_[0, 1] * zt + m.stack_[0, 2], rtol=1e-6)


def test_embedding_cache_resumes_without_reencoding(tmp_path):
    """Every cached text is found again by a fresh cache, also digests ending in NUL bytes (numpy's
    fixed-width bytes drop them; 1 text in 256 has one)."""
    from harmscope.classifiers.embcache import EmbeddingCache, text_key

    texts = [f"text {i}" for i in range(600)]
    assert sum(text_key(t).endswith(b"\0") for t in texts) >= 1  # the case that once broke resuming
    calls: list[int] = []

    def enc(part: list[str]) -> np.ndarray:
        calls.append(len(part))
        return np.array([[len(t) + j for j in range(384)] for t in part], dtype=np.float32)

    first = EmbeddingCache(tmp_path / "c", encode=enc, chunk=256).get(texts[:500])
    assert calls == [256, 244]
    calls.clear()
    again = EmbeddingCache(tmp_path / "c", encode=enc, chunk=256)
    assert len(again) == 500 and again.missing(texts[:500]) == []
    out = again.get(texts)
    assert calls == [100]  # only the 100 new texts are encoded
    np.testing.assert_array_equal(out[:500], first)
    np.testing.assert_array_equal(out[:, 0], [len(t) for t in texts])


def test_record_variant_adds_a_comparable_build_to_the_card(tmp_path):
    from harmscope.classifiers.build_default import record_variant

    m = MultiHeadClassifier(heads=("toxicity",), use_embed=False).fit(_toy(), None)
    m.save(tmp_path / "m", card={"threshold": 0.4, "variant": "tfidf", "seed": 0, "rebuild": "x", "figures": {}})
    sets = {"olid": {"rows": 10, "licence": "CC BY 4.0", "positive_rate": 0.3}}

    def rep(name: str, loso: float, ext: float) -> dict:
        return {"seed": 0, "sets": sets, "variants": {name: {
            "loso_mean_auc": loso, "external_mean_auc": ext, "loso": {"olid": {"n": 10, "auc": loso}},
            "held_out_test": {"olid": {"n": 3, "toxicity_auc": 0.777}}, "external": {"gab": {"n": 5, "auc": ext}}}}}

    (tmp_path / "m" / "build_report.json").write_text(json.dumps(rep("tfidf", 0.7533, 0.7466)))
    (tmp_path / "other.json").write_text(json.dumps(rep("stack", 0.8123, 0.8234)))
    md = record_variant(tmp_path / "m", tmp_path / "other.json", "stack",
                        throughput={"stack": {"texts_per_s": 123, "how": "perf script"}}, decision="kept tfidf")
    text = md.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| tfidf") or ln.startswith("| stack")]
    assert any("tfidf (shipped)" in r and "0.753" in r and "0.747" in r for r in rows)
    assert any(r.startswith("| stack |") and "0.812" in r and "0.823" in r and "| 123 |" in r for r in rows)
    assert "**Decision**: kept tfidf" in text
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["compared_variants"]["stack"] == {"loso_mean_auc": 0.8123, "external_mean_auc": 0.8234}
    assert MultiHeadClassifier.load(tmp_path / "m").card_["threshold"] == 0.4  # still loads
    bad = rep("stack", 0.8, 0.8)
    bad["seed"] = 1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="not comparable"):
        record_variant(tmp_path / "m", tmp_path / "bad.json", "stack")


def test_scores_do_not_depend_on_how_rows_are_batched():
    """Dask partitions score rows in other groupings than a local run: results must be bit-identical."""
    X = _toy(2000)
    rng = np.random.default_rng(2)
    E = rng.normal(size=(len(X), 384)).astype(np.float32)
    E[:, 0] += 3 * X["toxicity"].to_numpy()
    m = MultiHeadClassifier(heads=("toxicity", "insult")).fit(X, None, embeddings=E)
    whole = m.decision_all(X, embeddings=E)
    parts = np.vstack([m.decision_all(X.iloc[i:i + 37], embeddings=E[i:i + 37]) for i in range(0, len(X), 37)])
    assert np.array_equal(whole, parts)


def test_hash_split_and_threshold_hand_computed():
    from harmscope.classifiers.build_default import best_threshold, hash_split

    texts = [f"text {i}" for i in range(4000)]
    s = hash_split(texts)
    assert (hash_split(texts) == s).all()
    frac = {k: float((s == k).mean()) for k in ("train", "cal", "test")}
    assert abs(frac["train"] - 0.70) < 0.03 and abs(frac["cal"] - 0.15) < 0.03
    # set A is separated by any cut in (0.4, 0.7], set B by any cut in (0.65, 0.75]: only a cut in
    # (0.65, 0.7] gets balanced accuracy 1 on both; cuts at 0.5 or 0.72 get 0.875
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    sc = np.array([0.1, 0.4, 0.7, 0.9, 0.2, 0.65, 0.75, 0.8])
    g = np.array(["A"] * 4 + ["B"] * 4)
    t = best_threshold(y, sc, g)
    assert 0.65 < t <= 0.7
    p = sc >= t
    assert p[y == 1].all() and not p[y == 0].any()


# ---------------------------------------------------------------- the shipped default
def _shipped() -> Path:
    d = default_model_dir()
    if not (d / "model.json").is_file():
        pytest.fail(f"{d}: the default classifier is not shipped")
    return d


def test_default_loads_offline_with_heads_and_card(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from harmscope.classifiers.backends import load_classifier

    d = _shipped()
    m = load_classifier("default")
    card = json.loads((d / "model.json").read_text(encoding="utf-8"))
    heads = list(card["params"]["heads"])
    assert heads[0] == "toxicity" and len(heads) >= 3
    p = m.predict_all(["have a lovely day", "you are a worthless idiot", "I will kill you"])
    assert list(p.columns) == heads and p.shape == (3, len(heads))
    assert ((p >= 0) & (p <= 1)).all().all()
    assert m.predict_proba(["x", "y"]).shape == (2, 2)
    assert 0 < card["threshold"] < 1
    # the model card names its sets, licences, seed, rebuild command and figures
    from harmscope.classifiers.build_default import TRAIN_SETS

    assert set(card["training_sets"]) == set(TRAIN_SETS)
    assert {"seed", "rebuild", "figures", "heads"} <= set(card)
    assert (d / "MODEL_CARD.md").is_file()
    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    assert size <= 25 * 1024 * 1024


@pytest.mark.filterwarnings("ignore")
def test_default_ranks_a_fixed_real_sample():
    """On 400 held-out ToxiGen statements (never trained on) the shipped model keeps its AUC."""
    from sklearn.metrics import roc_auc_score

    from harmscope.classifiers.backends import load_classifier
    from harmscope.classifiers.datasets import load_dataset

    if not (DATA / "toxigen_annotated" / "toxigen.csv").is_file():
        pytest.skip("toxigen_annotated not available (set HARMSCOPE_DATA)")
    _shipped()
    df = load_dataset("toxigen-annotated:heldout").head(400)
    s = load_classifier("default").predict_proba(df)[:, 1]
    assert roc_auc_score(df["label"], s) >= 0.70


def test_toxicity_judge_uses_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HARMSCOPE_HOME", str(tmp_path))
    from harmscope.classifiers.judges.toxicity import ToxicityJudge

    d = _shipped()
    card = json.loads((d / "model.json").read_text(encoding="utf-8"))
    j = ToxicityJudge()
    assert j.threshold == pytest.approx(card["threshold"])
    s = j.scores(["you are a worthless idiot and everyone hates you", "Thanks, here is the recipe."])
    assert s[0] > s[1]
    assert not list(tmp_path.glob("judges/toxicity_*"))  # nothing fitted


def test_predict_cli_default_all_heads(tmp_path):
    from click.testing import CliRunner

    from harmscope.cli import main

    _shipped()
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["hello there", "you absolute idiot"], "label": [0, 1]}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(main, ["predict", "--classifier", "default", "--data", str(src), "--all-heads",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = pd.read_csv(out)
    assert {"score", "score_toxicity", "score_identity_attack"} <= set(res.columns)
    np.testing.assert_allclose(res["score"], res["score_toxicity"])


# ---------------------------------------------------------------- clean-budget study helpers
def test_budget_splits_disjoint_and_sized():
    from harmscope.classifiers.strategies import budget_splits

    n = 500
    df = pd.DataFrame({"text": [f"t{i}" for i in range(n)], "label": np.arange(n) % 2,
                       "target": (np.arange(n) % 2).astype(float), "noisy_label": (np.arange(n) // 2) % 2})
    clean, noisy, ev = budget_splits(df, 100, seed=3)
    assert len(clean) == 100 and len(clean) + len(noisy) + len(ev) == n
    assert not (set(clean["text"]) & set(ev["text"])) and not (set(noisy["text"]) & set(ev["text"]))
    assert "label" not in noisy.columns and "target" not in noisy.columns  # clean labels never leak
    ev2 = budget_splits(df, 50, seed=9)[2]
    assert ev2["text"].tolist() == ev["text"].tolist()  # same held-out part for every budget/seed
    with pytest.raises(HarmscopeError, match="clean budget"):
        budget_splits(df, 10_000)


def test_budget_study_runs_every_strategy_on_toy_data():
    from harmscope.classifiers.commands import evaluate
    from harmscope.classifiers.study import parse_budgets, run_budget_study

    rng = np.random.default_rng(0)
    n = 600
    y = np.arange(n) % 2
    texts = [f"{rng.choice(BAD if v else GOOD)} {rng.integers(1e6)}" for v in y]
    noisy = np.where(rng.random(n) < 0.25, 1 - y, y)
    grp = (np.arange(n) // 2) % 2
    df = pd.DataFrame({"text": texts, "label": y, "target": y.astype(float), "noisy_label": noisy,
                       "g1": grp.astype(float), "g2": 1.0 - grp})
    df.attrs["group_cols"] = ["g1", "g2"]
    res = run_budget_study("tfidf", df, [40, 120], ["clean", "noisy", "pretrain-finetune"], evaluate=evaluate,
                           n_boot=5)
    s = res["summary"]
    assert s[["budget", "strategy"]].values.tolist() == [[40, "clean"], [40, "noisy"], [40, "pretrain-finetune"],
                                                         [120, "clean"], [120, "noisy"], [120, "pretrain-finetune"]]
    assert (s["overall_auc"] > 0.9).all()
    assert set(res["per_group"]["subgroup"]) == {"g1", "g2"}
    from harmscope.classifiers.study import markdown_table

    md = markdown_table(s).splitlines()
    assert len(md) == 2 + 6 and md[2].startswith("| 40 | clean |")
    assert sum("**" in line for line in md[2:5]) >= 1  # the best per budget is marked
    assert parse_budgets("250, 1000") == [250, 1000]
    with pytest.raises(InputError, match="--budgets"):
        parse_budgets("250,x")


def test_experiment_strategies_cli_errors(tmp_path):
    from click.testing import CliRunner

    from harmscope.cli import main

    r = CliRunner().invoke(main, ["experiment", "strategies", "--data", "toxigen-annotated", "--budgets", "0",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--budgets: 0 must be > 0" in r.output
    r = CliRunner().invoke(main, ["experiment", "strategies", "--clean", "corpus:clean", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "give --clean, --noisy and --eval, or --data" in r.output
    r = CliRunner().invoke(main, ["experiment", "strategies", "--data", "corpus:eval", "--budgets", "100",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs a set with clean and noisy labels" in r.output
