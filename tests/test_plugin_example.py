"""The example plugin (tests/plugin_example, entry point group ``harmscope.plugins``) from the CLI:
its transform, model adapter and judge are reached by name like the built-in ones."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmscope.cli import main
from harmscope.registry import load_plugins

load_plugins()
try:
    import harmscope_plugin_example  # noqa: F401
except ImportError:
    pytest.skip("the example plugin is not installed: pip install -e tests/plugin_example (make install does it)",
                allow_module_level=True)


def _ok(res):
    assert res.exit_code == 0, res.output
    return res


def test_plugin_transform_model_and_judge_from_the_cli(tmp_path):
    r = CliRunner()
    probes = tmp_path / "probes.jsonl"
    _ok(r.invoke(main, ["probes", "generate", "--rules", "insults,no-body", "--per-rule", "3", "--seed", "1",
                        "--benign-ratio", "0", "--transforms", "mytransform", "--out", str(probes)]))
    rows = [json.loads(x) for x in probes.read_text().splitlines()[1:] if x.strip()]  # line 1: the manifest
    mine = [p for p in rows if p["transforms"] == ["mytransform"]]
    assert mine and len(mine) < len(rows)
    from harmscope.benchmarks.probes.transforms import get_transform

    for p in mine:  # the words come in reverse order; decoding restores a sentence
        text = get_transform("mytransform").decode(p["messages"][-1]["content"])
        assert text != p["messages"][-1]["content"] and text[0].isupper()

    rates = {}
    for style in ("comply", "refuse"):
        run = tmp_path / style
        _ok(r.invoke(main, ["run", "--model", f"myplugin:{style}", "--probes", str(probes), "--out", str(run)]))
        res = _ok(r.invoke(main, ["score", str(run), "--judges", "myjudge[threshold=0.5]:Sure"]))
        assert "pooled violation rate" in res.output
        doc = json.loads((run / "result.json").read_text())
        assert doc["manifest"]["model"] == f"myplugin:{style}"
        assert doc["judges"]["components"]["judges"][0]["name"] == "myjudge"
        rates[style] = doc["summary"]["pooled"]["rate"]
    assert rates == {"comply": 1.0, "refuse": 0.0}  # the judge flags exactly the replies opening with "Sure"


def test_plugin_errors_are_one_line(tmp_path):
    r = CliRunner()
    res = r.invoke(main, ["score", str(tmp_path), "--judges", "myjudge[k=2]"])
    assert res.exit_code == 2 and "unknown judge option(s) k" in res.output and "takes: w, threshold" in res.output
    probes = tmp_path / "p.jsonl"
    _ok(r.invoke(main, ["probes", "generate", "--rules", "insults", "--per-rule", "1", "--out", str(probes)]))
    res = r.invoke(main, ["run", "--model", "myplugin:maybe", "--probes", str(probes), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "myplugin: unknown style 'maybe'" in res.output
