"""The ``harmscope rules`` command group."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harmscope.cli import main
from harmscope.rules import load_catalog

FIX = Path(__file__).parent / "fixtures"


def run(*args: str):
    return CliRunner().invoke(main, ["rules", *args])


def test_list_table_and_filters():
    res = run("list", "--group", "privacy")
    assert res.exit_code == 0, res.output
    assert "private-information" in res.stdout and "private-inference" in res.stdout
    assert "insults" not in res.stdout and "(2 of 36" in res.stdout


def test_list_json_combines_filters():
    res = run("list", "--area", "I", "--severity", ">=high", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["id"] for r in rows] == ["identity-attacks", "threats", "sexual-aggression", "hate-harassment",
                                   "private-inference"]
    assert all("I" in r["areas"] for r in rows)


def test_list_unknown_filter_exits_2():
    res = run("list", "--group", "nope")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: unknown group in selector 'group:nope'")


def test_show_text_json_yaml():
    res = run("show", "no-medical-advice")
    assert res.exit_code == 0
    assert res.stdout.startswith("no-medical-advice: No individual medical advice")
    assert "III.2  Material harm from poor information in sensitive domains" in res.stdout
    data = json.loads(run("show", "insults", "--format", "json").stdout)
    assert data["id"] == "insults" and len(data["examples"]["violating"]) >= 6
    assert run("show", "insults", "--format", "yaml").stdout.startswith("id: insults\n")
    bad = run("show", "insultz")
    assert bad.exit_code == 2 and "did you mean 'insults'" in bad.stderr


def test_coverage_ok_and_csv(tmp_path):
    out = tmp_path / "cov.csv"
    res = run("coverage", "--csv", str(out))
    assert res.exit_code == 0, res.output
    assert "all 17 measurable risks covered by 36 rules" in res.stdout
    assert "VI.1" in res.stdout and "not measurable" in res.stdout
    m = pd.read_csv(out, index_col="risk")
    assert m.shape == (21, 37)  # measurable flag + 36 rules
    assert m.loc["I.3", "insults"] == 1 and m.loc["I.3", "no-body"] == 0
    assert m.loc["VI.2", "measurable"] == 0 and m.drop(columns="measurable").loc["VI.1"].sum() == 0


def test_coverage_uncovered_exits_1():
    res = run("--catalog", str(FIX / "valid_user.yaml"), "--no-builtin", "coverage")
    assert res.exit_code == 1
    assert "UNCOVERED measurable risks: I.1, I.2, II.1, II.2, II.3" in res.stdout
    assert "(2/17 covered)" in res.stdout


def test_export_json_and_csv(tmp_path):
    res = run("export", "--format", "json")
    payload = json.loads(res.stdout)
    assert payload["catalog_version"] == load_catalog().version
    assert len(payload["rules"]) == 36 and "source" not in payload["rules"][0]
    out = tmp_path / "rules.csv"
    res = run("export", "--format", "csv", "--out", str(out), "--select", "group:dialogue")
    assert res.exit_code == 0
    df = pd.read_csv(out)
    assert list(df["id"]) == ["make-sense", "stay-on-topic", "address-query", "no-repetition"]
    assert df.loc[0, "risks"] == "III.1;I.4"


def test_export_examples_csv(tmp_path):
    out = tmp_path / "ex.csv"
    assert run("export", "--examples", "--format", "csv", "--out", str(out)).exit_code == 0
    df = pd.read_csv(out)
    cat = load_catalog()
    assert len(df) == sum(len(r.examples.violating) + len(r.examples.compliant) for r in cat)
    assert df.groupby("rule_id")["label"].sum().min() >= 6


def test_override_option():
    assert run("--catalog", str(FIX / "valid_user.yaml"), "show", "insults").exit_code == 2
    res = run("--catalog", str(FIX / "valid_user.yaml"), "--override", "show", "insults")
    assert res.exit_code == 0 and "No insults (house version)" in res.stdout


@pytest.mark.parametrize("cmd", ["list", "show", "validate", "coverage", "export"])
def test_every_command_help_has_an_example(cmd):
    res = run(cmd, "--help")
    assert res.exit_code == 0 and "Example:" in res.stdout and "harmscope rules" in res.stdout
