"""train / experiment strategies / predict through the real CLI entry point."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from harmscope.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small corpus split written as CSV files (clean / noisy / eval)."""
    from harmscope.classifiers.corpus import make_corpus, split_corpus

    d = tmp_path_factory.mktemp("corpus")
    parts = split_corpus(make_corpus(2000, seed=0), clean_frac=0.06, eval_frac=0.5, seed=0)
    out = {}
    for name, df in parts.items():
        cols = ["text", "label", *df.attrs["group_cols"]] + (["noisy_label"] if name == "noisy" else [])
        df[cols].to_csv(d / f"{name}.csv", index=False)
        out[name] = d / f"{name}.csv"
    out["groups"] = ",".join(parts["eval"].attrs["group_cols"])
    return out


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_train_with_dataset_names(tmp_path):
    r = _run("train", "--backend", "tfidf", "--strategy", "clean", "--clean", "corpus:clean", "--param", "C=2",
             "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["strategy"] == "clean" and card["seed"] == 0 and card["params"]["C"] == 2
    assert card["data"]["clean"]["n"] == 300 and card["data"]["clean"]["spec"] == "corpus:clean"


def test_train_then_predict(tmp_path, files):
    r = _run("train", "--backend", "tfidf", "--strategy", "pretrain-finetune", "--clean", files["clean"],
             "--noisy", files["noisy"], "--eval", files["eval"], "--label-col", "label",
             "--noisy-label-col", "noisy_label", "--group-cols", files["groups"], "--n-boot", "0",
             "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert "eval AUC" in r.output and "final bias score" in r.output
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["strategy"] == "pretrain-finetune"
    assert card["data"]["clean"]["n"] == 120 and card["data"]["noisy"]["n"] == 880
    assert card["data"]["noisy"]["noisy_positive_rate"] > card["data"]["noisy"]["positive_rate"]
    assert card["metrics"]["overall_auc"] > 0.9
    texts = pd.DataFrame({"comment": ["you are a worthless idiot", "thanks, that was a helpful explanation"],
                          "label": [1, 0]})
    texts.to_csv(tmp_path / "in.csv", index=False)
    r = _run("predict", "--classifier", tmp_path / "m", "--data", tmp_path / "in.csv", "--out",
             tmp_path / "out.jsonl")
    assert r.exit_code == 0, r.output
    out = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert out["comment"].tolist() == texts["comment"].tolist()
    assert out["score"][0] > 0.5 > out["score"][1]
    assert "AUC against 'label': 1.0000" in r.output


def test_experiment_strategies(tmp_path, files):
    r = _run("experiment", "strategies", "--backend", "tfidf", "--clean", files["clean"], "--noisy",
             files["noisy"], "--eval", files["eval"], "--label-col", "label", "--noisy-label-col", "noisy_label",
             "--group-cols", files["groups"], "--strategies", "clean,noisy", "--n-boot", "20",
             "--out", tmp_path / "x")
    assert r.exit_code == 0, r.output
    summary = pd.read_csv(tmp_path / "x" / "summary.csv")
    assert summary["strategy"].tolist() == ["clean", "noisy"]
    for col in ("overall_auc", "overall_auc_lo", "overall_auc_hi", "power_mean_bpsn_auc", "final_score"):
        assert col in summary.columns
    assert (summary["overall_auc_lo"] <= summary["overall_auc"]).all()
    per = pd.read_csv(tmp_path / "x" / "per_group.csv")
    assert {"strategy", "subgroup", "subgroup_auc", "bpsn_auc", "bnsp_auc"} <= set(per.columns)
    res = json.loads((tmp_path / "x" / "results.json").read_text())
    assert res["seed"] == 0 and len(res["summary"]) == 2
    assert "final bias" in r.output


def _fails(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.output
    return lines[0]


def test_clean_errors(tmp_path):
    assert "no such file or dataset name" in _fails("train", "--clean", tmp_path / "nope.csv", "--out",
                                                    tmp_path / "m")
    p = tmp_path / "d.csv"
    pd.DataFrame({"body": ["a", "b"], "y": [0, 1]}).to_csv(p, index=False)
    line = _fails("train", "--clean", p, "--text-col", "body", "--label-col", "label", "--out", tmp_path / "m")
    assert str(p) in line and "'label'" in line
    assert "needs a noisy training set" in _fails("train", "--strategy", "union", "--clean", p, "--text-col",
                                                  "body", "--label-col", "y", "--out", tmp_path / "m")
    assert "--param" in _fails("train", "--clean", p, "--text-col", "body", "--label-col", "y",
                               "--param", "nonsense=1", "--out", tmp_path / "m")
    assert "unknown classifier" in _fails("predict", "--classifier", "nope", "--data", p, "--out",
                                          tmp_path / "o.csv")


def test_evaluate_uses_the_fairness_bootstrap_with_or_without_groups():
    """The overall AUC interval comes from fairness.bias_metrics on both paths: the same seed gives
    the same interval whether or not the eval set has identity columns."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from harmscope.classifiers.commands import evaluate

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = rng.random(400) + 0.4 * y
    plain = pd.DataFrame({"text": ["t"] * 400, "label": y})
    grouped = plain.assign(g=(np.arange(400) % 3 == 0).astype(float))
    grouped.attrs["group_cols"] = ["g"]
    a, per_a = evaluate(s, plain, n_boot=60, seed=7)
    b, per_b = evaluate(s, grouped, n_boot=60, seed=7)
    assert a["overall_auc"] == pytest.approx(roc_auc_score(y, s))
    assert (a["overall_auc_lo"], a["overall_auc_hi"]) == (b["overall_auc_lo"], b["overall_auc_hi"])
    assert a["overall_auc_lo"] < a["overall_auc"] < a["overall_auc_hi"]
    assert per_a.empty and list(per_b["subgroup"]) == ["g"]
    one_class, _ = evaluate(s, plain.assign(label=1), n_boot=10, seed=0)
    assert np.isnan(one_class["overall_auc"]) and one_class["overall_auc_lo"] is None
