"""`judges validate --by FIELD`: figures per value of a field (hazard category, model, rule, ...)."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harmscope.classifiers.judges.labelled import read_labelled
from harmscope.classifiers.judges.replysets import read_generic
from harmscope.classifiers.judges.validate import _by_groups, one_line, validate_judge
from harmscope.cli import main
from harmscope.errors import InputError


def test_by_groups_against_hand_counts():
    values = ["a", "a", "b", "a", None, "b"]
    truth = [1, 0, 1, 1, 0, 0]
    pred = [1, 1, 0, 1, 0, 0]
    score = [0.9, 0.8, 0.2, 0.7, 0.1, 0.3]
    g, missing = _by_groups(values, truth, pred, score)
    assert list(g) == ["a", "b"]  # largest group first, then by name
    a = g["a"]  # tp 2, fp 1: its one negative was called positive
    assert (a["n"], a["tp"], a["fp"], a["tn"], a["fn"]) == (3, 2, 1, 0, 0)
    assert a["accuracy"] == pytest.approx(2 / 3) and a["recall"] == 1.0 and a["specificity"] == 0.0
    assert a["auc"] == 0.5  # the negative (0.8) is below the positive 0.9, above 0.7: 1 of 2 pairs
    b = g["b"]  # a missed positive (0.2) below a negative (0.3)
    assert (b["n"], b["fn"], b["tn"], b["accuracy"], b["auc"]) == (2, 1, 1, 0.5, 0.0)
    assert missing["n"] == 1 and missing["auc"] is None  # one class only: no AUC
    assert _by_groups(["a", "b"], [1, 0], [1, 0], [0.9, 0.1])[1] is None  # every row has a value


def test_by_groups_keep_missing_apart_from_lookalike_values():
    values = ["(none)", None, float("nan"), pd.NA, "  ", " x ", "x", "<NA>", "b", "b", "a", "a"]
    g, missing = _by_groups(values, [1] * 12, [1] * 12, [0.5] * 12)
    assert missing["n"] == 4  # None, NaN, pd.NA and a blank value; a real "(none)" or "<NA>" stays a value
    assert list(g) == ["a", "b", "x", "(none)", "<NA>"]  # size, then name; " x " is "x"
    assert [g[k]["n"] for k in g] == [2, 2, 2, 1, 1]


def test_one_line_shows_hidden_characters():
    assert one_line("S14") == "S14"
    assert one_line("a\u202eb\nc\x1b[31m") == "a[U+202E]b[U+000A]c[U+001B][31m"
    assert one_line("x" * 50, width=10) == "x" * 9 + "…"
    assert one_line("x" * 10, width=10) == "x" * 10
    assert one_line("abcdef\x1bghij", width=10) == "abcdef…"  # never cut inside a [U+XXXX] mark


def test_generic_files_carry_group_fields(tmp_path):
    f = tmp_path / "lab.jsonl"
    f.write_text(json.dumps({"reply": "No.", "violation": 0, "category": " S3 ", "model": "m1"}) + "\n"
                 + json.dumps({"reply": "Sure.", "violation": 1}) + "\n")
    df = read_labelled(f, need="any")
    assert df["category"].iloc[0] == "S3" and df["model"].iloc[0] == "m1"  # stripped
    assert df[["category", "model"]].iloc[1].isna().all()
    assert df["group"].isna().all() and df["source"].isna().all()
    g = read_generic(f)
    assert g["category"].iloc[0] == "S3" and pd.isna(g["category"].iloc[1])
    assert g["source"].tolist() == ["lab.jsonl"] * 2


def _rows():
    return [{"reply": "I can't help with that.", "label": "refusal", "model": "alpha"},
            {"reply": "Sure, here is the full script: step 1 ...", "label": "comply", "model": "alpha"},
            {"reply": "No.", "label": "refusal", "model": "beta\u202e"},
            {"reply": "Of course! Here are the steps you asked for: first, ...", "label": "comply"}]


def test_cli_by_model_adds_up_to_the_overall_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("HARMSCOPE_HOME", str(tmp_path / "home"))
    data = tmp_path / "lab.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in _rows()) + "\n")
    res = CliRunner().invoke(main, ["judges", "validate", "--judge", "refusal", "--data", str(data), "--by", "model"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [x.split()[0] for x in lines[:8]] == ["accuracy", "precision", "recall", "specificity", "f1", "kappa",
                                                 "auc", "n"]  # the overall figures, one per line, unchanged
    assert lines[8].split()[:3] == ["by", "model", "n"]
    assert [x.split()[0] for x in lines[9:12]] == ["alpha", "beta[U+202E]", "(no"]  # the rows without one last
    assert [x.split()[1] for x in lines[9:11]] == ["2", "1"] and lines[11].split()[2] == "1"
    assert "\u202e" not in res.output
    saved = json.loads((tmp_path / "home" / "judges" / "refusal" / "validation.json").read_text())
    by = saved["by"]
    assert by["field"] == "model" and set(by["groups"]) == {"alpha", "beta\u202e"} and by["missing"]["n"] == 1
    for k in ("n", "tp", "tn", "fp", "fn"):  # the groups and the rows without a value partition the scored rows
        assert sum(g[k] for g in [*by["groups"].values(), by["missing"]]) == saved["metrics"][k]


def test_cli_prints_at_most_the_largest_groups(monkeypatch, capsys):
    from harmscope.benchmarks.scoring import commands

    monkeypatch.setattr(commands, "BY_SHOWN", 2)
    m = {"n": 1, "accuracy": 1.0, "recall": None, "specificity": 1.0, "kappa": None, "auc": None}
    commands._print_by({"groups": {"g1": m, "g2": m, "g3": m}, "missing": None}, "category")
    out = capsys.readouterr().out.splitlines()
    assert [x.split()[0] for x in out] == ["by", "g1", "g2", "..."] and "1 smaller groups" in out[-1]
    assert out[1].split()[1:] == ["1", "1.000", "-", "1.000", "-", "-"]


def test_cli_choices_are_the_fields_validate_accepts():
    from harmscope.benchmarks.scoring.commands import judges_validate
    from harmscope.classifiers.judges.validate import BY_FIELDS

    opt = next(o for o in judges_validate.params if o.name == "by")
    assert tuple(opt.type.choices) == BY_FIELDS


def test_by_errors(tmp_path):
    data = tmp_path / "lab.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in _rows()) + "\n")
    with pytest.raises(InputError, match="--by 'nosuch': not one of"):
        validate_judge("refusal", data, save=False, by="nosuch")
    with pytest.raises(InputError, match="--by category: lab.jsonl has no 'category' values"):
        validate_judge("refusal", data, save=False, by="category")
    r = CliRunner().invoke(main, ["judges", "validate", "--judge", "refusal", "--data", str(data), "--no-save",
                                  "--by", "category"])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["judges", "validate", "--judge", "refusal", "--data", str(data), "--by", "x"])
    assert r.exit_code == 2 and "--by" in r.output


def test_by_breakdown_matches_overall_without_by(tmp_path):
    data = tmp_path / "lab.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in _rows()) + "\n")
    plain = validate_judge("refusal", data, save=False)
    split = validate_judge("refusal", data, save=False, by="label")
    assert plain["metrics"] == split["metrics"]
    g = split["by"]["groups"]
    assert set(g) == {"refusal", "comply"} and split["by"]["missing"] is None
    assert (g["refusal"]["n"], g["comply"]["n"]) == (2, 2)
    assert np.isclose(sum(x["accuracy"] * x["n"] for x in g.values()) / 4, plain["metrics"]["accuracy"])
