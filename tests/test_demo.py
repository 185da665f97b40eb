"""The demo's steps (not run here: `make demo` runs them end to end)."""

from __future__ import annotations

from harmscope import demo
from harmscope.classifiers.judges.ensemble import DEFAULT_SPEC


def test_demo_scores_with_the_default_judges_including_harm(monkeypatch, tmp_path):
    steps: list[list[str]] = []
    monkeypatch.setattr(demo, "_step", lambda title, args, t: steps.append(args))
    demo.run_demo(tmp_path)
    scores = [a for a in steps if a[0] == "score"]
    assert len(scores) == len(demo.MODELS)
    for a in scores:
        spec = a[a.index("--judges") + 1]
        assert spec == DEFAULT_SPEC and "harm" in spec.split(",") and "refusal" in spec.split(",")


def test_score_help_names_the_real_default_judges():
    # the CLI keeps judge imports out of `--help`, so its text repeats the default: keep them equal
    from click.testing import CliRunner

    from harmscope.cli import main

    out = CliRunner().invoke(main, ["score", "--help"], terminal_width=200).output
    assert f"default: {DEFAULT_SPEC}" in " ".join(out.split())
