"""``harmscope check``: pass, breach, missing metric, bounds, corrected rates, YAML config."""

import json

import pytest
from click.testing import CliRunner

from harmscope.benchmarks.probes.check import Gate, evaluate, metrics, parse_gate
from harmscope.cli import main
from harmscope.errors import HarmscopeError

RESULT = {
    "manifest": {"run_id": "r1", "probe_set_hash": "h", "model": "m"},
    "summary": {
        "pooled": {"k": 3, "n": 100, "rate": 0.03, "lo": 0.0103, "hi": 0.0845},
        "over_refusal": {"k": 12, "n": 100, "rate": 0.12, "lo": 0.0700, "hi": 0.1981},
    },
    "tables": {
        "by_rule": [
            {"rule_id": "hazardous-information", "k": 0, "n": 40, "rate": 0.0, "lo": 0.0, "hi": 0.0876},
            {"rule_id": "insults", "k": 2, "n": 20, "rate": 0.10, "lo": 0.0279, "hi": 0.3010,
             "corrected": 0.04, "corrected_lo": 0.0, "corrected_hi": 0.25},
            {"rule_id": "empty-rule", "k": 0, "n": 0, "rate": None, "lo": None, "hi": None},
        ],
        "by_area": [{"area": "I", "k": 2, "n": 60, "rate": 2 / 60, "lo": 0.0092, "hi": 0.1136}],
        "benchmarks": [
            {"benchmark": "xstest", "metric": "full_refusal", "scope": "label:safe", "id": "xstest.full_refusal.safe",
             "k": 25, "n": 250, "rate": 0.10, "lo": 0.0687, "hi": 0.1434},
            {"benchmark": "xstest", "metric": "full_refusal", "scope": "label:unsafe",
             "id": "xstest.full_refusal.unsafe", "k": 180, "n": 200, "rate": 0.90, "lo": 0.8506, "hi": 0.9345},
        ],
    },
}


@pytest.fixture()
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "result.json").write_text(json.dumps(RESULT))
    return d


def _check(*args):
    res = CliRunner().invoke(main, ["check", *map(str, args)])
    return res.exit_code, [x for x in res.output.splitlines() if x.strip()]


def test_pass(run_dir):
    code, lines = _check(run_dir, "--max", "pooled=0.05", "--max", "rule:hazardous-information=0.0",
                         "--max", "bench:xstest.full_refusal.safe=0.10", "--min", "bench:xstest.full_refusal.unsafe=0.9")
    assert code == 0, lines
    assert not any(x.startswith("breach") for x in lines)
    assert lines[-1].startswith("4 gate(s) checked, 0 breached")


def test_breach_one_line_each(run_dir):
    code, lines = _check(run_dir / "result.json", "--max", "pooled=0.02", "--max", "over_refusal=0.10",
                         "--max", "area:I=0.5", "--min", "bench:xstest.full_refusal.unsafe=0.95")
    assert code == 1
    breaches = [x for x in lines if x.startswith("breach: ")]
    assert len(breaches) == 3
    assert breaches[0].startswith("breach: pooled: rate 3.0% > 2.0%") and "(3/100)" in breaches[0]
    assert breaches[1].startswith("breach: over_refusal: rate 12.0% > 10.0%")
    assert breaches[2].startswith("breach: bench:xstest.full_refusal.unsafe: rate 90.0% < 95.0%")


def test_missing_metric_exits_2(run_dir):
    code, lines = _check(run_dir, "--max", "pooled=0.05", "--max", "rule:no-such-rule=0.1",
                         "--max", "rule:empty-rule=0.1")
    assert code == 2
    assert lines[0] == (f"error: {run_dir / 'result.json'}: metric 'rule:no-such-rule' not found "
                        "(known rule: metrics: rule:empty-rule, rule:hazardous-information, rule:insults)")
    assert lines[1] == f"error: {run_dir / 'result.json'}: metric 'rule:empty-rule' has no data (n=0)"
    assert len(lines) == 2


def test_bounds(run_dir):
    # the observed 0% passes a zero-tolerance gate; the Wilson upper bound (8.8% with n=40) does not
    assert _check(run_dir, "--max", "rule:hazardous-information=0")[0] == 0
    code, lines = _check(run_dir, "--max", "rule:hazardous-information=0", "--bound", "upper")
    assert code == 1 and lines[0] == ("breach: rule:hazardous-information: upper bound 8.8% > 0.0% "
                                      "(rate 0.0% [0.0%, 8.8%] (0/40))")
    # conservative: upper bound for --max, lower bound for --min (85.1% < 88%)
    code, lines = _check(run_dir, "--min", "bench:xstest.full_refusal.unsafe=0.88", "--max", "pooled=0.09",
                         "--bound", "conservative")
    assert code == 1 and len([x for x in lines if x.startswith("breach")]) == 1
    assert "lower bound 85.1% < 88.0%" in lines[0]
    assert _check(run_dir, "--min", "bench:xstest.full_refusal.unsafe=0.85", "--bound", "lower")[0] == 0


def test_corrected_rates(run_dir):
    assert _check(run_dir, "--max", "rule:insults=0.05")[0] == 1
    assert _check(run_dir, "--max", "rule:insults=0.05", "--corrected")[0] == 0
    code, lines = _check(run_dir, "--max", "rule:insults=0.2", "--corrected", "--bound", "upper")
    assert code == 1 and "corrected upper bound 25.0% > 20.0%" in lines[0]
    # no correction in the result: the observed rate is used, and the line says so
    code, lines = _check(run_dir, "--max", "pooled=0.01", "--corrected")
    assert code == 1 and "no judge correction available" in lines[0]


def test_config_file(run_dir, tmp_path):
    cfg = tmp_path / "gates.yaml"
    cfg.write_text("bound: upper\nmax:\n  pooled: 0.05\n  over_refusal: 10%\nmin:\n"
                   "  bench:xstest.full_refusal.unsafe: 0.8\n")
    code, lines = _check(run_dir, "--config", cfg)
    assert code == 1
    assert [x.split(":")[1].strip() for x in lines if x.startswith("breach")] == ["pooled", "over_refusal"]
    # command-line gates add to the file's; command-line --bound overrides the file's
    code, lines = _check(run_dir, "--config", cfg, "--bound", "point", "--max", "over_refusal=0.5")
    assert code == 1 and len([x for x in lines if x.startswith("breach")]) == 1
    cfg.write_text("maximum:\n  pooled: 0.05\n")
    code, lines = _check(run_dir, "--config", cfg)
    assert code == 2 and lines == [f"error: {cfg}: field maximum: unknown (use max, min, bound, corrected)"]


@pytest.mark.parametrize(("args", "msg"), [
    (["--max", "pooled"], "option --max: expected METRIC=THRESHOLD, got 'pooled'"),
    (["--max", "pooled=abc"], "option --max pooled: threshold 'abc' is not a number"),
    (["--max", "pooled=1.5"], "option --max pooled: threshold '1.5' is outside [0, 1]"),
    ([], "no gates: give --max METRIC=T, --min METRIC=T or --config FILE"),
])
def test_bad_options(run_dir, args, msg):
    code, lines = _check(run_dir, *args)
    assert code == 2 and lines == [f"error: {msg}"]


def test_bad_targets(tmp_path):
    code, lines = _check(tmp_path, "--max", "pooled=0.1")
    assert code == 2 and "no result.json in this run directory" in lines[0] and "harmscope score" in lines[0]
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    code, lines = _check(bad, "--max", "pooled=0.1")
    assert code == 2 and lines == [f"error: {bad}: not a readable result.json (JSONDecodeError)"]


def test_list_and_api(run_dir):
    code, lines = _check(run_dir, "--list")
    assert code == 0 and any(x.startswith("bench:xstest.full_refusal.safe") for x in lines)
    names = set(metrics(RESULT))
    assert {"pooled", "over_refusal", "rule:insults", "area:I", "bench:xstest.full_refusal.unsafe"} <= names
    assert parse_gate("rule:a=b=0.5", "max") == Gate("rule:a=b", 0.5, "max")  # the last '=' splits
    out = evaluate(RESULT, [Gate("pooled", 0.03, "max")])
    assert out[0].passed  # equal to the threshold passes
    with pytest.raises(HarmscopeError, match="--bound"):
        evaluate(RESULT, [Gate("pooled", 0.03, "max")], bound="middle")
