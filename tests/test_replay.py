"""`harmscope score RUN_DIR --replay`: the judges, ensemble settings, seed and reference stored as typed
specs in result.json rebuild the same scoring, with identical tables."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmscope.classifiers.judges import JUDGES, JudgeSet, parse_spec
from harmscope.cli import main
from harmscope.errors import InputError

GRADER = '''
def grade(messages, params):
    """A deterministic stand-in grader: the verdict depends on the prompt and the vote's seed."""
    text = messages[-1]["content"]
    return '{"violation": %s, "confidence": 0.8}' % ("true" if (len(text) + params["seed"]) % 3 else "false")
'''
JUDGES_SPEC = "pattern,awareness,llm[k=3,max_tokens=40,w=2]:python:h2_replay_grader:grade;mode=weighted;insults=majority"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from harmscope.benchmarks.probes.generate import generate
    from harmscope.benchmarks.runs.engine import run_probes
    from harmscope.models import GenParams, load_model
    from harmscope.rules import load_catalog

    d = tmp_path_factory.mktemp("replay")
    ps = generate(load_catalog(), rules="insults,no-body,private-information", per_rule=4, transforms=["none"],
                  benign_ratio=0.25, seed=2)
    run_probes(ps, load_model("baseline:echo"), run_dir=d / "echo", params=GenParams(max_tokens=64), progress=False)
    return d / "echo"


@pytest.fixture
def grader(tmp_path, monkeypatch):
    (tmp_path / "h2_replay_grader.py").write_text(GRADER)
    monkeypatch.syspath_prepend(str(tmp_path))


def _score(*args):
    return CliRunner().invoke(main, ["score", *args])


def test_replay_gives_identical_tables(run_dir, grader):
    res = _score(str(run_dir), "--judges", JUDGES_SPEC, "--seed", "5")
    assert res.exit_code == 0, res.output
    first = json.loads((run_dir / "result.json").read_text())
    comp = first["judges"]["components"]
    assert [j["name"] for j in comp["judges"]] == ["pattern", "awareness", "llm"]
    llm = comp["judges"][2]
    assert llm["kind"] == "judge" and llm["version"] == JUDGES.get("llm").version
    assert llm["args"] == {"args": "python:h2_replay_grader:grade", "k": 3, "max_tokens": 40}
    assert comp["mode"] == "weighted" and comp["weights"]["llm"] == 2.0 and comp["rule_modes"] == {"insults": "majority"}
    assert comp["scoring"]["seed"] == 5
    assert any(r["n"] for r in first["tables"]["by_rule"])

    (run_dir / "result.json").write_text(json.dumps(first))  # replay reads nothing but this file's specs
    res = _score(str(run_dir), "--replay")
    assert res.exit_code == 0, res.output
    again = json.loads((run_dir / "result.json").read_text())
    assert again["tables"] == first["tables"] and again["summary"] == first["summary"]
    assert again["judges"]["components"] == comp


def test_to_specs_round_trip(grader):
    js = parse_spec(JUDGES_SPEC)
    back = JudgeSet.from_specs(js.to_specs())
    assert [(j.id, j.full_version, j.kind) for j in back.judges] == [(j.id, j.full_version, j.kind) for j in js.judges]
    assert (back.mode, back.weights, back.rule_modes) == (js.mode, js.weights, js.rule_modes)
    assert back.by_name("llm").k == 3 and back.by_name("llm").max_tokens == 40


def test_replay_refuses_changed_judges(grader):
    specs = parse_spec("pattern,llm[k=3]:python:h2_replay_grader:grade").to_specs()
    bumped = json.loads(json.dumps(specs))
    bumped["judges"][0]["version"] = "0"
    with pytest.raises(InputError, match="version 1 here, but the stored spec was made with version 0"):
        JudgeSet.from_specs(bumped)
    reweighted = json.loads(json.dumps(specs))
    reweighted["judges"][1]["full_version"] = "1+k1"
    with pytest.raises(InputError, match="results would differ"):
        JudgeSet.from_specs(reweighted)
    gone = json.loads(json.dumps(specs))
    gone["judges"][0]["name"] = "no-such-judge"
    with pytest.raises(InputError, match="unknown judge 'no-such-judge'"):
        JudgeSet.from_specs(gone)


def test_replay_errors_are_one_line(run_dir, tmp_path, grader):
    res = _score(str(run_dir), "--replay", "--judges", "pattern")
    assert res.exit_code == 2 and "--replay takes the judges" in res.output and "drop --judges" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _score(str(empty), "--replay")
    assert res.exit_code == 2 and "result.json: missing" in res.output
    doc = json.loads((run_dir / "result.json").read_text()) if (run_dir / "result.json").is_file() else None
    if doc is None:
        assert _score(str(run_dir), "--judges", "pattern").exit_code == 0
        doc = json.loads((run_dir / "result.json").read_text())
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.json").write_text((run_dir / "run.json").read_text())
    doc["judges"].pop("components")
    (old / "result.json").write_text(json.dumps(doc))
    res = _score(str(old), "--replay")
    assert res.exit_code == 2 and "older harmscope without stored judge specs" in res.output
    assert "Traceback" not in res.output


def test_a_stand_in_judge_fills_its_kinds_ballot(tmp_path, monkeypatch):
    """wildguard-refusal is registered under its own name but votes (and is corrected) as `refusal`."""
    from harmscope.benchmarks.scoring.tables import _judge_counts
    from harmscope.classifiers.judges.base import user_judges_dir

    monkeypatch.setenv("HARMSCOPE_HOME", str(tmp_path))
    js = parse_spec("wildguard-refusal:openai:wg@http://127.0.0.1:9/v1,pattern")
    j = js.by_kind("refusal")
    assert j is not None and j.name == "wildguard-refusal" and js.by_name("refusal") is None
    assert js.names == ["wildguard-refusal", "pattern"] and js.kinds == ["refusal", "pattern"]
    assert _judge_counts(js, "refusal") is None  # no figures yet
    d = user_judges_dir(j.id)
    d.mkdir(parents=True)
    (d / "validation.json").write_text(json.dumps({"metrics": {"tp": 40, "fn": 10, "tn": 45, "fp": 5}}))
    counts = _judge_counts(js, "refusal")
    assert counts is not None and (counts.tp, counts.fn, counts.tn, counts.fp) == (40, 10, 45, 5)
    with pytest.raises(Exception, match="'refusal' and 'wildguard-refusal' both vote as 'refusal'"):
        parse_spec("refusal,wildguard-refusal:openai:wg@http://127.0.0.1:9/v1")
