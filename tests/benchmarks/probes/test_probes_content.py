"""The generator against the real catalog and the packaged content (harmscope/benchmarks/probes/data)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from harmscope.benchmarks.probes.generate import generate, is_probe_measurable, read_probes, write_probes
from harmscope.benchmarks.probes.lexicon import load_lexicon
from harmscope.benchmarks.probes.presets import PRESETS
from harmscope.benchmarks.probes.templates import (
    load_benign,
    load_hints,
    load_manyshot,
    load_templates,
    packaged_data_dir,
)
from harmscope.benchmarks.probes.transforms import TRANSFORMS, get_transform

DATA = packaged_data_dir()


@pytest.fixture(scope="module")
def catalog():
    from harmscope.rules import load_catalog

    return load_catalog()


@pytest.fixture(scope="module")
def smoke(catalog):
    return generate(catalog, preset="smoke")


@pytest.fixture(scope="module")
def standard(catalog):
    return generate(catalog, preset="standard")


def test_packaged_content_is_valid(catalog) -> None:
    tpls = load_templates(DATA / "templates", catalog.rules)
    assert len(tpls) >= 12 * len(catalog.rules) * 0.9
    lex = load_lexicon(DATA / "lexicon.yaml")
    assert len(lex.axes) >= 14 and len(lex) >= 220
    assert len(load_benign(DATA / "benign.yaml", catalog.rules)) >= 150
    bank = load_hints(DATA / "hints.yaml")
    assert len(bank.items) >= 40 and len(bank.styles) >= 6
    if (DATA / "manyshot.yaml").is_file():
        assert len(load_manyshot(DATA / "manyshot.yaml")) >= 40


def test_every_probe_measurable_rule_gets_probes(catalog, smoke) -> None:
    measurable = {r.id for r in catalog.rules.values() if is_probe_measurable(r)}
    assert measurable  # the catalog has rules to probe
    covered = Counter(rid for p in smoke.probes if p.family == "standard" for rid in p.rule_ids)
    assert measurable <= set(covered)
    assert all(covered[r] == PRESETS["smoke"]["per_rule"] for r in measurable)


def test_smoke_preset_shape(smoke) -> None:
    n = len(smoke.probes)
    assert 200 <= n <= 600
    fam = Counter(p.family for p in smoke.probes)
    assert fam["framing"] == 2 * PRESETS["smoke"]["framing_pairs"]
    assert fam["hint"] == 2 * PRESETS["smoke"]["hint_pairs"]
    assert fam["escalation"] == PRESETS["smoke"]["escalations"]
    assert abs(fam["benign"] - 0.15 * n) <= 1
    chains = {",".join(p.transforms) or "none" for p in smoke.probes if p.family == "standard"}
    assert chains == set(PRESETS["smoke"]["transforms"])
    per_axis = defaultdict(set)
    for p in smoke.probes:
        if p.group_axis:
            per_axis[p.group_axis].add(p.group)
    assert all(len(v) <= 3 for v in per_axis.values())


def test_every_lexicon_axis_appears(smoke, standard) -> None:
    axes = set(load_lexicon(DATA / "lexicon.yaml").axes)
    assert {p.group_axis for p in smoke.probes if p.group_axis} == axes
    assert {p.group_axis for p in standard.probes if p.group_axis} == axes


def test_standard_preset_shape(standard) -> None:
    n = len(standard.probes)
    assert 3000 <= n <= 10000
    assert standard.manifest.counts.get("shortfall_standard", 0) == 0
    used = {t for p in standard.probes for t in p.transforms}
    builtin = {e.name for e in TRANSFORMS if type(e.obj).__module__.startswith("harmscope.")}  # not plugins
    assert used == builtin  # every built-in transform is exercised
    shots = load_manyshot(DATA / "manyshot.yaml") if (DATA / "manyshot.yaml").is_file() else []
    pairs = set(shots)
    for p in standard.probes:
        if p.transforms == ["manyshot"] and len(shots) >= 16:
            body = [(m.role, m.content) for m in p.messages if m.role != "system"]
            k = 0
            while 2 * k + 1 < len(body) and (body[2 * k][1], body[2 * k + 1][1]) in pairs:
                k += 1
            assert 8 <= k <= 16


def test_smoke_is_deterministic(catalog, smoke, tmp_path) -> None:
    again = generate(catalog, preset="smoke")
    path = write_probes(smoke, tmp_path / "a.jsonl")
    assert path.read_bytes() == write_probes(again, tmp_path / "b.jsonl").read_bytes()
    assert read_probes(path) == smoke  # every id re-computed with Probe.make_id
    assert generate(catalog, preset="smoke", seed=1).manifest.set_hash != smoke.manifest.set_hash


def test_reversible_transforms_round_trip_on_real_templates(catalog) -> None:
    lex = load_lexicon(DATA / "lexicon.yaml")
    d = next(iter(lex.axes.values()))[0]
    reversible = [get_transform(e.name) for e in TRANSFORMS if e.meta["reversible"]]
    rng = random.Random(0)
    checked = 0
    for t in load_templates(DATA / "templates", catalog.rules):
        values = {k: v[0] for k, v in t.fills.items()} | {"term": d.term, "plural": d.plural}
        text = t.render(values)[-1]["content"]
        for tr in reversible:
            if tr.name == "leetspeak" and any(c in text for c in "013457"):
                continue
            out = tr.apply([{"role": "user", "content": text}], rng)
            assert tr.decode(out[-1]["content"]) == text, (tr.name, t.id)
            checked += 1
    assert checked > 1000
