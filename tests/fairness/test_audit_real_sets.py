"""Audits of the shipped default classifier on the real identity-annotated sets (skipped without
$HARMSCOPE_DATA), and the audit command's threshold / label choices."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harmscope.fairness.commands import audit_label_col, resolve_threshold

DATA = Path(os.environ.get("HARMSCOPE_DATA", "../shared/data"))


def test_resolve_threshold(tmp_path):
    assert resolve_threshold(0.3, "default") == 0.3
    (tmp_path / "model.json").write_text(json.dumps({"backend": "tfidf", "threshold": 0.42}), encoding="utf-8")
    assert resolve_threshold(None, str(tmp_path)) == 0.42
    (tmp_path / "model.json").write_text(json.dumps({"backend": "tfidf", "threshold": 7}), encoding="utf-8")
    assert resolve_threshold(None, str(tmp_path)) == 0.5  # out of range: ignored
    assert resolve_threshold(None, None) == 0.5
    from harmscope.classifiers.backends.multihead import default_model_dir

    card = json.loads((default_model_dir() / "model.json").read_text(encoding="utf-8"))
    assert resolve_threshold(None, "default") == pytest.approx(card["threshold"])


def test_audit_label_col(tmp_path):
    df = pd.DataFrame({"text": ["a"], "target": [0.6], "label": [1]})
    assert audit_label_col("toxigen-annotated", df) == "label"
    f = tmp_path / "x.csv"
    df.to_csv(f, index=False)
    assert audit_label_col(str(f), df) == "target"


@pytest.mark.filterwarnings("ignore")
def test_cli_audit_default_on_heldout_toxigen(tmp_path):
    if not (DATA / "toxigen_annotated" / "toxigen.csv").is_file():
        pytest.skip("toxigen_annotated not available (set HARMSCOPE_DATA)")
    from click.testing import CliRunner

    from harmscope.cli import main

    out = tmp_path / "audit"
    r = CliRunner().invoke(main, ["audit", "--classifier", "default", "--data", "toxigen-annotated:heldout",
                                  "--n-boot", "20", "--no-counterfactual", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    groups = {row["subgroup"] for row in res["tables"]["jigsaw"]}
    assert len(groups) == 13 and {"black", "women", "muslim"} <= groups
    assert res["params"]["threshold"] == pytest.approx(resolve_threshold(None, "default"))
    assert res["worst_groups"]
    assert (out / "bias_aucs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    auc = res["overall"]["overall_auc"]
    assert 0.7 <= auc <= 1.0


def test_plot_bias_aucs_on_given_scores(tmp_path):
    import numpy as np

    from harmscope.fairness.audit import audit, plot_bias_aucs

    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    g = rng.integers(0, 2, n)
    s = np.clip(0.5 * y + 0.3 * g + rng.normal(0, 0.2, n), 0, 1)  # group 1 scored higher: BPSN suffers
    df = pd.DataFrame({"target": y.astype(float), "a": g.astype(float), "b": 1.0 - g})
    res = audit(s, df, group_cols=["a", "b"], n_boot=20, counterfactual=False)
    p = plot_bias_aucs(res, tmp_path / "x.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    worst = min(res.tables["jigsaw"], key=lambda r: r["bpsn_auc"])
    assert worst["subgroup"] == "a"
