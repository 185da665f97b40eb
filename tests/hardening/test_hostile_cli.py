"""The hostile CLI: bad inputs across every command each give exit 2, exactly one ``error:`` line on
stderr, no traceback, and leave pre-existing outputs unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hardening.conftest import cli, one_error, write_probe_file


def _w(p: Path, data: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, encoding="utf-8")
    return p


def _probes(t: Path) -> Path:
    p = t / "probes.jsonl"
    if not p.exists():
        write_probe_file(p, 3)
    return p


def _csv(t: Path) -> Path:
    return _w(t / "data.csv", "text,label\nhello there,0\nyou idiot,1\nnice day,0\nstupid,1\n")


def _nested(t: Path) -> Path:
    return _w(t / "nested.jsonl", '{"text": ' + "[" * 100000 + "]" * 100000 + ', "label": 1}\n')


def _nonutf8_probes(t: Path) -> Path:
    src = _probes(t).read_bytes().splitlines(keepends=True)
    src[2] = src[2].replace(b"question", b"quest\xff\xfeion")
    return _w(t / "bad_probes.jsonl", b"".join(src))


def _replay(t: Path, name: str, data: str | bytes) -> str:
    return "replay:" + str(_w(t / name, data))


def _model(t: Path) -> Path:
    from harmscope.classifiers.backends import TfidfClassifier, save_model

    d = t / "model"
    if not d.exists():
        save_model(TfidfClassifier(bits=8).fit(["good", "bad idiot", "nice", "stupid"], [0, 1, 0, 1]), d)
    return d


def _afile(t: Path) -> Path:
    return _w(t / "afile", "x")


def _run(t: Path, model: str, *extra: str) -> list[str]:
    return ["run", "--model", model, "--probes", str(_probes(t)), "--out", str(t / "out" / "run"), *extra]


def _dup_catalog(t: Path) -> Path:
    return _w(t / "cat" / "rules.yaml", "group: g\nrules:\n  - id: r1\n    id: r2\n    area: I\n")


def _real_run(t: Path) -> Path:
    d = t / "work" / "run"
    if not (d / "run.json").exists():
        r = cli(["run", "--model", "baseline:refuse", "--probes", str(_probes(t)), "--out", str(d)])
        assert r.exit_code == 0, r.stderr
    return d


def _yaml_model(t: Path) -> Path:
    return _w(t / "m.yaml", "spec: openai:m@http://127.0.0.1:9/v1\nbogus_option: 1\n")


def _big_field(t: Path) -> Path:
    p = t / "big.csv"
    with p.open("w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        fh.write('"' + "a" * (12 * 1024 * 1024) + '",1\n')
    return p


Case = tuple[str, Callable[[Path], list[str]], dict[str, str], str]

CASES: list[Case] = [
    # --- run: model specs, keys, endpoints, replay files, probe files, output paths
    ("run-unknown-kind", lambda t: _run(t, "bogus:x"), {}, "unknown model kind"),
    ("run-url-credentials", lambda t: _run(t, "openai:m@http://u:pw@127.0.0.1:9/v1"), {}, "user:password"),
    ("run-key-newline", lambda t: _run(t, "openai:m@http://127.0.0.1:9/v1"),
     {"OPENAI_API_KEY": "sk-secret-123\n"}, "OPENAI_API_KEY"),
    ("run-key-non-ascii", lambda t: _run(t, "openai:m@http://127.0.0.1:9/v1"),
     {"OPENAI_API_KEY": "sk-sécret-123"}, "non-ASCII"),
    ("run-dead-endpoint", lambda t: _run(t, "openai:m@http://127.0.0.1:9/v1", "--timeout", "1"), {},
     "cannot reach"),
    ("run-bad-port", lambda t: _run(t, "openai:m@http://127.0.0.1:99999/v1"), {}, "base URL"),
    ("run-replay-binary", lambda t: _run(t, _replay(t, "r.bin", b"\x00\x01\x02PK\x03\x04\n")), {}, "r.bin"),
    ("run-replay-non-utf8", lambda t: _run(t, _replay(t, "r1.jsonl", b'{"probe_id": "p", "text": "\xff"}\n')),
     {}, "not UTF-8"),
    ("run-replay-conflict", lambda t: _run(t, _replay(
        t, "r2.jsonl", '{"probe_id": "p", "text": "a"}\n{"probe_id": "p", "text": "b"}\n')), {}, "conflicting"),
    ("run-replay-nested", lambda t: _run(t, _replay(t, "r3.jsonl", "[" * 100000 + "]" * 100000 + "\n")), {},
     "nested"),
    ("run-probes-non-utf8-line", lambda t: ["run", "--model", "baseline:refuse", "--probes",
                                            str(_nonutf8_probes(t)), "--out", str(t / "out" / "run")],
     {}, "bad_probes.jsonl:3"),
    ("run-probes-missing", lambda t: ["run", "--model", "baseline:refuse", "--probes", str(t / "nope.jsonl"),
                                      "--out", str(t / "out" / "run")], {}, "nope.jsonl"),
    ("run-out-inside-file", lambda t: ["run", "--model", "baseline:refuse", "--probes", str(_probes(t)),
                                       "--out", str(_afile(t) / "run")], {}, "--out"),
    ("run-yaml-unknown-option", lambda t: _run(t, str(_yaml_model(t))), {}, "bogus_option"),
    ("run-concurrency-zero", lambda t: _run(t, "baseline:refuse", "--concurrency", "0"), {}, "--concurrency"),
    ("run-timeout-nan", lambda t: _run(t, "baseline:refuse", "--timeout", "nan"), {}, "--timeout"),
    ("run-empty-model", lambda t: _run(t, " "), {}, "model spec"),
    # --- train / experiment
    ("train-param-abc", lambda t: ["train", "--clean", str(_csv(t)), "--param", "C=abc", "--out",
                                   str(t / "out" / "m")], {}, "C="),
    ("train-param-negative", lambda t: ["train", "--clean", str(_csv(t)), "--param", "C=-1", "--out",
                                        str(t / "out" / "m")], {}, "must be > 0"),
    ("train-param-unknown", lambda t: ["train", "--clean", str(_csv(t)), "--param", "nope=1", "--out",
                                       str(t / "out" / "m")], {}, "--param"),
    ("train-threshold-nan", lambda t: ["train", "--clean", str(_csv(t)), "--threshold", "nan", "--out",
                                       str(t / "out" / "m")], {}, "--threshold"),
    ("train-nested-jsonl", lambda t: ["train", "--clean", str(_nested(t)), "--out", str(t / "out" / "m")], {},
     "nested"),
    ("train-out-inside-file", lambda t: ["train", "--clean", str(_csv(t)), "--out", str(_afile(t) / "m")], {},
     "--out"),
    ("train-missing-data", lambda t: ["train", "--clean", str(t / "none.csv"), "--out", str(t / "out" / "m")],
     {}, "none.csv"),
    ("experiment-out-inside-file", lambda t: ["experiment", "strategies", "--clean", str(_csv(t)), "--noisy",
                                              str(_csv(t)), "--eval", str(_csv(t)), "--out",
                                              str(_afile(t) / "x")], {}, "--out"),
    ("experiment-param-abc", lambda t: ["experiment", "strategies", "--clean", str(_csv(t)), "--noisy",
                                        str(_csv(t)), "--eval", str(_csv(t)), "--param", "C=abc", "--out",
                                        str(t / "out" / "x")], {}, "C="),
    ("experiment-unknown-strategy", lambda t: ["experiment", "strategies", "--clean", str(_csv(t)), "--noisy",
                                               str(_csv(t)), "--eval", str(_csv(t)), "--strategies", "bogus",
                                               "--out", str(t / "out" / "x")], {}, "bogus"),
    # --- predict
    ("predict-xlsx", lambda t: ["predict", "--classifier", str(_model(t)), "--data", str(_csv(t)), "--out",
                                str(t / "out" / "x.xlsx")], {}, ".xlsx"),
    ("predict-out-inside-file", lambda t: ["predict", "--classifier", str(_model(t)), "--data", str(_csv(t)),
                                           "--out", str(_afile(t) / "x.csv")], {}, "--out"),
    ("predict-nested-jsonl", lambda t: ["predict", "--classifier", str(_model(t)), "--data", str(_nested(t)),
                                        "--out", str(t / "out" / "p.csv")], {}, "nested"),
    ("predict-not-a-model", lambda t: ["predict", "--classifier", str(_afile(t)), "--data", str(_csv(t)),
                                       "--out", str(t / "out" / "p.csv")], {}, "afile"),
    ("predict-truncated-card", lambda t: ["predict", "--classifier", str(_w(t / "bad" / "model.json", "{")
                                                                        .parent), "--data", str(_csv(t)),
                                          "--out", str(t / "out" / "p.csv")], {}, "model.json"),
    ("predict-big-field", lambda t: ["predict", "--classifier", str(_model(t)), "--data", str(_big_field(t)),
                                     "--out", str(t / "out" / "p.csv")], {}, "big.csv"),
    # --- audit
    ("audit-threshold-nan", lambda t: ["audit", "--scores-col", "label", "--data", str(_csv(t)), "--threshold",
                                       "nan", "--out", str(t / "out" / "a")], {}, "--threshold"),
    ("audit-out-inside-file", lambda t: ["audit", "--scores-col", "label", "--data", str(_csv(t)), "--out",
                                         str(_afile(t) / "a")], {}, "--out"),
    ("audit-counterfactual-binary", lambda t: ["audit", "--classifier", str(_model(t)), "--data", "templates",
                                               "--counterfactual-file", str(_w(t / "cf.txt", b"\xff\xfe\x00bin")),
                                               "--out", str(t / "out" / "a")], {}, "cf.txt"),
    ("audit-both-sources", lambda t: ["audit", "--classifier", str(_model(t)), "--scores-col", "label",
                                      "--data", str(_csv(t)), "--out", str(t / "out" / "a")], {}, "exactly one"),
    # --- score / judges
    ("score-judge-k-abc", lambda t: ["score", str(_real_run(t)), "--judges", "llm[k=abc]:baseline:echo"], {}, "k='abc'"),
    ("score-judge-undeclared-option", lambda t: ["score", str(_real_run(t)), "--judges", "pattern[k=3]"], {},
     "unknown judge option(s) k in 'pattern[k=3]' (judge 'pattern' takes: w)"),
    ("score-judge-threshold-nan", lambda t: ["score", str(_real_run(t)), "--judges", "toxicity[threshold=nan]"],
     {}, "threshold='nan'"),
    ("score-llm-dead-endpoint", lambda t: ["score", str(_real_run(t)), "--judges",
                                           "pattern,llm:openai:m@http://127.0.0.1:9/v1"], {}, "cannot reach"),
    ("score-not-a-run", lambda t: ["score", str(t / "nowhere")], {}, "run.json"),
    # --- report / runs
    ("report-out-inside-file", lambda t: ["report", str(t / "out" / "run0"), "--out", str(_afile(t) / "r")], {},
     "--out"),
    ("report-missing-result", lambda t: ["report", str(t / "out"), "--out", str(t / "rep")], {}, "result.json"),
    ("report-bad-format", lambda t: ["report", str(t / "out"), "--format", "docx", "--out", str(t / "rep")], {},
     "docx"),
    ("runs-list-garbage-store", lambda t: ["runs", "list", str(_w(t / "g.sqlite", b"garbage" * 1000))], {},
     "g.sqlite"),
    # --- rules / probes
    ("rules-duplicate-yaml-key", lambda t: ["rules", "validate", str(_dup_catalog(t))], {}, "duplicate key"),
    ("rules-list-duplicate-yaml-key", lambda t: ["rules", "--catalog", str(_dup_catalog(t)), "list"], {},
     "duplicate key"),
    ("probes-generate-unknown-preset", lambda t: ["probes", "generate", "--preset", "bogus", "--out",
                                                  str(t / "out" / "p.jsonl")], {}, "bogus"),
    ("probes-generate-xlsx", lambda t: ["probes", "generate", "--preset", "smoke", "--out",
                                        str(t / "out" / "p.xlsx")], {}, "xlsx"),
    # --- demo
    ("demo-bogus-preset", lambda t: ["demo", "--preset", "bogus", "--out", str(t / "out" / "demo")], {}, "bogus"),
    ("demo-out-inside-file", lambda t: ["demo", "--out", str(_afile(t) / "demo")], {}, "--out"),
]


def _snapshot(t: Path) -> dict[str, str]:
    return {str(p.relative_to(t)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((t / "out").rglob("*")) if p.is_file()}


def _unchanged(before: dict[str, str], after: dict[str, str]) -> bool:
    """Every pre-existing output is still there, byte for byte."""
    return all(after.get(k) == v for k, v in before.items())


@pytest.mark.parametrize("name,build,env,expect", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(name, build, env, expect, tmp_path):
    out = tmp_path / "out"
    _w(out / "run0" / "keep.txt", "a pre-existing output\n")
    _w(out / "m" / "model.json", '{"keep": true}\n')
    _w(out / "x" / "summary.csv", "keep\n")
    before = _snapshot(tmp_path)
    args = build(tmp_path)
    r = cli(args, env=env)
    assert r.exit_code == 2, (name, r.exit_code, r.stdout[-500:], r.stderr[-1500:], repr(r.exception))
    line = one_error(r)
    assert expect in line, (name, line)
    for secret in ("sk-secret-123", "sk-sécret-123"):
        assert secret not in r.stderr + r.stdout
    assert _unchanged(before, _snapshot(tmp_path)), name


def test_case_count():
    assert len(CASES) >= 40
