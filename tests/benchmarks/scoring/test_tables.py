"""The table registry: every table has one builder reachable by name, and score_frames runs them all."""

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
    assert list(res["tables"]) == [n for n in tables.TABLES if not n.startswith("dist_")]
    for name in tables.TABLES:
        rows = tables.build_table(name, tables.ScoreInputs(dec, rep, js, rules, n_boot=50))
        if name.startswith("dist_"):
            assert rows is None
        else:
            assert rows == res["tables"][name], name
    # the registry-built rows are the hand-computed ones (see test_scoring)
    over = tables.build_table("over_refusal", tables.ScoreInputs(dec, rep, js, rules))[0]
    assert (over["k"], over["n"], over["partial"]) == (1, 4, 1)
    with pytest.raises(HarmscopeError, match="unknown table 'nope'"):
        tables.build_table("nope", tables.ScoreInputs(dec, rep, js, rules))


def test_a_table_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        tables.table("by_rule")(lambda x: [])
    assert tables.TABLES["by_rule"].__name__ == "_by_rule"
