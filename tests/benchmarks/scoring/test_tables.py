"""The table registry: every table has one builder reachable by name, and score_frames runs them all."""

import re
from pathlib import Path

import pytest
from test_scoring import CAT, build, judgeset

from harmscope.benchmarks.scoring import judging, tables
from harmscope.errors import HarmscopeError


def test_every_table_builder_is_reachable_by_name(tmp_path):
    store = build(tmp_path)
    js, rules = judgeset(), dict(CAT.rules)
    dec, rep, _ = judging.judge_run(store, "r1", js, rules)
    res = tables.score_frames(dec, rep, js, rules, n_boot=50)
    # a run without distributional probes has every table except the dist_* ones, in registry order
    assert list(res["tables"]) == [n for n in tables.TABLES.names() if not n.startswith("dist_")]
    for name in tables.TABLES.names():
        rows = tables.build_table(name, tables.ScoreInputs(dec, rep, js, rules, n_boot=50))
        if name.startswith("dist_"):
            assert rows is None
        else:
            assert rows == res["tables"][name], name
    # the registry-built rows are the hand-computed ones (see test_scoring)
    over = tables.build_table("over_refusal", tables.ScoreInputs(dec, rep, js, rules))[0]
    assert (over["k"], over["n"], over["partial"]) == (1, 4, 1)
    with pytest.raises(HarmscopeError, match="unknown score table 'nope'"):
        tables.build_table("nope", tables.ScoreInputs(dec, rep, js, rules))


ORDER = ["by_rule", "by_group", "by_area", "by_transform", "by_turns", "rule_x_transform", "rule_x_identity",
         "by_identity", "attack_success", "over_refusal", "compliance_gap", "hint", "toxicity", "dist_groups",
         "dist_axes", "dist_cooccurrence", "dist_replies", "dist_rules", "dist_rule_summary", "awareness", "grades",
         "examples", "judge_validation", "benchmarks"]


def test_registry_order_is_the_result_order():
    # the order of RunResult.tables (and of every result.json written so far) is the registration order
    assert tables.TABLES.names() == ORDER
    assert all(e.description for e in tables.TABLES)


def test_a_table_name_registers_once():
    with pytest.raises(HarmscopeError, match="score table 'by_rule' is registered twice"):
        tables.TABLES.register(name="by_rule")(lambda x: [])
    assert tables.TABLES.get("by_rule").obj.__name__ == "_by_rule"


def test_docs_example_adds_a_table(tmp_path):
    """The "Adding a score table" example of docs/benchmarks.md registers a working builder."""
    doc = (Path(__file__).parents[3] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Adding a score table"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    try:
        exec(compile(code, "docs/benchmarks.md", "exec"), {})
        assert tables.TABLES.names()[-1] == "by_family"
        store = build(tmp_path)
        js, rules = judgeset(), dict(CAT.rules)
        dec, rep, _ = judging.judge_run(store, "r1", js, rules)
        res = tables.score_frames(dec, rep, js, rules, n_boot=50)
        assert list(res["tables"])[-1] == "by_family"
        # standard: fraud-scams 2/4 + transformed 2/2 + no-body 1/3; framing 3/6 (see test_scoring.build)
        assert {r["family"]: (r["k"], r["n"]) for r in res["tables"]["by_family"]} == {"standard": (5, 9),
                                                                                      "framing": (3, 6)}
    finally:
        tables.TABLES.unregister("by_family")
