"""Probe generator and probe files, against small fixture content and the real rule catalog."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harmscope.benchmarks.probes.families import chain_index
from harmscope.benchmarks.probes.generate import generate, read_probes, write_probes
from harmscope.benchmarks.probes.lexicon import load_lexicon
from harmscope.benchmarks.probes.templates import load_benign, load_hints, load_templates
from harmscope.errors import HarmscopeError, InputError, ValidationErrors
from harmscope.types import Probe

FIX = Path(__file__).parent / "fixtures" / "probes_data"
RULES = "stereotypes,insults,no-body"


@pytest.fixture(scope="module")
def catalog():
    from harmscope.rules import load_catalog

    return load_catalog()


def gen(catalog, **kw):
    args = {"rules": RULES, "data_dir": FIX, "per_rule": 9, "seed": 3}
    args.update(kw)
    return generate(catalog, **args)


@pytest.fixture(scope="module")
def full(catalog):
    """A set with every family."""
    return gen(
        catalog,
        transforms="base64;rot13,roleplay",
        benign_ratio=0.2,
        framing_pairs=4,
        hint_pairs=5,
        escalations=4,
    )


# ---------------------------------------------------------------- determinism and ids
def test_same_seed_same_bytes_other_seed_other_hash(catalog, full, tmp_path) -> None:
    again = gen(
        catalog,
        transforms="base64;rot13,roleplay",
        benign_ratio=0.2,
        framing_pairs=4,
        hint_pairs=5,
        escalations=4,
    )
    a, b = write_probes(full, tmp_path / "a.jsonl"), write_probes(again, tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes()
    assert full.manifest.set_hash == again.manifest.set_hash
    other = gen(
        catalog, transforms="base64;rot13,roleplay", benign_ratio=0.2, framing_pairs=4, hint_pairs=5, escalations=4,
        seed=4,
    )  # fmt: skip
    assert other.manifest.set_hash != full.manifest.set_hash
    assert [p.id for p in other.probes] != [p.id for p in full.probes]


def test_ids_are_content_hashes_and_unique(full) -> None:
    ids = [p.id for p in full.probes]
    assert len(ids) == len(set(ids))
    for p in full.probes:
        assert Probe.make_id(**p.model_dump(mode="json")) == p.id
        assert p.seed == 3


def test_manifest_counts_and_params(catalog, full) -> None:
    m = full.manifest
    fam = Counter(p.family for p in full.probes)
    assert m.counts["probes"] == len(full.probes)
    for f in ("standard", "escalation", "framing", "hint", "benign"):
        assert m.counts[f] == fam[f]
    assert m.params["transforms"] == ["none", "base64", "rot13,roleplay"]
    assert m.params["rules"] == [r.id for r in catalog.select(RULES)]  # catalog order


# ---------------------------------------------------------------- stratification
def test_chain_index_covers_every_pair() -> None:
    for rows, cols in [(2, 3), (3, 3), (12, 6), (5, 2), (1, 4)]:
        assert {(i % rows, chain_index(i, rows, cols)) for i in range(rows * cols)} == {
            (r, c) for r in range(rows) for c in range(cols)
        }


def test_standard_probes_are_stratified(full) -> None:
    std = [p for p in full.probes if p.family == "standard"]
    per_rule = Counter(p.rule_ids[0] for p in std)
    assert per_rule == {"stereotypes": 9, "insults": 9, "no-body": 9}
    chains = Counter(",".join(p.transforms) or "none" for p in std)
    assert set(chains) == {"none", "base64", "rot13,roleplay"}
    assert max(chains.values()) - min(chains.values()) <= 3
    by_rule_tpl = Counter((p.rule_ids[0], p.template_id) for p in std)
    # stereotypes has 3 templates -> exactly 3 each; insults/no-body have 2 -> 4 or 5 each
    assert {by_rule_tpl[("stereotypes", f"stereotypes-0{i}")] for i in (1, 2, 3)} == {3}
    assert sorted(v for (r, _), v in by_rule_tpl.items() if r == "insults") == [4, 5]


def test_identity_probes_cycle_over_axes(catalog, full) -> None:
    lex = load_lexicon(FIX / "lexicon.yaml")
    ident = [p for p in full.probes if p.group_axis]
    assert {p.group_axis for p in ident} == set(lex.axes)
    for p in ident:
        d = {x.term: x for x in lex.axes[p.group_axis]}[p.group]
        assert p.slots.get("term", d.term) == d.term and p.slots.get("plural", d.plural) == d.plural
        assert p.meta["preferred"] == d.preferred
        if not p.transforms:
            assert (d.plural in p.messages[-1].content) or (d.term in p.messages[-1].content)
    only = gen(catalog, rules="stereotypes", axes="age,disability", per_rule=8)
    assert {p.group_axis for p in only.probes} == {"age", "disability"}
    # round-robin over axes: 8 probes over 2 axes -> 4 each
    assert Counter(p.group_axis for p in only.probes) == {"age": 4, "disability": 4}


def test_groups_per_axis_limits_descriptors(catalog) -> None:
    ps = gen(catalog, rules="stereotypes", per_rule=12, groups_per_axis=1)
    per_axis = defaultdict(set)
    for p in ps.probes:
        per_axis[p.group_axis].add(p.group)
    assert set(per_axis) == {"religion", "age", "disability"} and all(len(v) == 1 for v in per_axis.values())


def test_duplicates_removed_and_shortfall_reported(catalog) -> None:
    # insults-02 has no fills: with one chain only 1 + 3 distinct insults probes exist
    ps = gen(catalog, rules="insults", per_rule=20)
    assert len(ps.probes) == 4 and len({p.id for p in ps.probes}) == 4
    assert ps.manifest.counts["shortfall_standard"] == 16


# ---------------------------------------------------------------- families
def test_benign_share_matches_ratio(catalog) -> None:
    for ratio in (0.1, 0.25):
        ps = gen(catalog, benign_ratio=ratio, transforms="base64;rot13")
        n = len(ps.probes)
        benign = [p for p in ps.probes if p.benign]
        assert abs(len(benign) - ratio * n) <= 1
        assert all(p.family == "benign" and p.expected == "comply" for p in benign)
        assert all(p.meta["kind"] and p.meta["contrasts"] for p in benign)
    none = gen(catalog, benign_ratio=0.0)
    assert not any(p.benign for p in none.probes)


def test_benign_items_follow_selected_groups(catalog) -> None:
    ps = gen(catalog, rules="insults", benign_ratio=0.3)
    benign = [p for p in ps.probes if p.benign]
    assert benign and {p.meta["contrasts"] for p in benign} == {"toxicity"}
    roast = [p for p in benign if p.template_id == "benign-roast-chicken"]
    assert roast and roast[0].rule_ids == ["insults"]


def test_framing_pairs_share_the_request(full) -> None:
    pairs = defaultdict(list)
    for p in full.probes:
        if p.family == "framing":
            pairs[p.pair_id].append(p)
    assert len(pairs) == 4
    for mem in pairs.values():
        assert sorted(p.variant for p in mem) == ["monitored", "unmonitored"]
        a, b = mem
        assert [m for m in a.messages if m.role != "system"] == [m for m in b.messages if m.role != "system"]
        assert a.messages[0].role == b.messages[0].role == "system" and a.messages[0] != b.messages[0]
        assert (a.template_id, a.slots, a.rule_ids, a.expected) == (
            b.template_id,
            b.slots,
            b.rule_ids,
            b.expected,
        )
        assert a.transforms == [a.variant]


def test_hint_pairs_differ_only_by_the_hint(full) -> None:
    pairs = defaultdict(dict)
    for p in full.probes:
        if p.family == "hint":
            pairs[p.pair_id][p.variant] = p
    assert len(pairs) == 5
    bank = load_hints(FIX / "hints.yaml")
    for mem in pairs.values():
        h, n = mem["hint"], mem["nohint"]
        assert h.meta == n.meta and h.template_id == n.template_id
        hint = h.meta["hint_text"]
        assert hint == bank.styles[h.meta["style"]].replace("{hinted}", h.meta["hinted"])
        text = h.messages[-1].content
        stripped = (
            text.replace(hint + "\n\n", "", 1)
            if text.startswith(hint)
            else text.replace("\n\n" + hint, "", 1)
        )
        assert stripped == n.messages[-1].content and hint not in n.messages[-1].content
        assert h.meta["hinted"] != h.meta["answer"] and set(h.meta["choices"]) >= {
            h.meta["hinted"],
            h.meta["answer"],
        }
        assert h.rule_ids == ["no-body"] or h.rule_ids == []  # rules judged for awareness, if any


def test_escalation_probes_are_multi_turn(full) -> None:
    esc = [p for p in full.probes if p.family == "escalation"]
    assert len(esc) == 4
    for p in esc:
        roles = [m.role for m in p.messages if m.role != "system"]
        assert roles[-3:] == ["user", "assistant", "user"] and p.transforms == ["escalation"]


def test_progress_callback(catalog) -> None:
    calls: list[tuple[int, int]] = []
    # packaged content: enough distinct probes for several progress steps
    ps = generate(catalog, rules="group:toxicity", per_rule=200, progress=lambda d, t: calls.append((d, t)))
    n = len(ps.probes)
    assert n > 500 and calls[-1] == (n, n)
    assert [d for d, _ in calls[:-1]] == list(range(500, n + 1, 500))


# ---------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"rules": "nosuch-rule"}, "nosuch-rule"),
        ({"rules": "insults,-insults"}, "selects no rules"),
        ({"axes": "religion,planets"}, "unknown identity axis 'planets'"),
        ({"transforms": "base64,nope"}, "unknown transform 'nope'"),
        ({"benign_ratio": 1.0}, "benign-ratio"),
        ({"per_rule": -1}, "per-rule"),
        ({"preset": "huge"}, "unknown preset"),
        ({"rules": "threats"}, "no templates"),
    ],
)
def test_bad_arguments(catalog, kw, msg) -> None:
    with pytest.raises(HarmscopeError, match=msg):
        gen(catalog, **kw)


# ---------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip(full, tmp_path, suffix) -> None:
    path = write_probes(full, tmp_path / f"set{suffix}")
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"set{suffix}"]  # no temp file left behind
    back = read_probes(path)
    assert back == full
    assert back.manifest.set_hash == full.manifest.set_hash
    if suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        assert json.loads(lines[0]) == {"manifest": full.manifest.model_dump(mode="json")}
        assert len(lines) == len(full.probes) + 1


def _lines(full, tmp_path) -> tuple[Path, list[str]]:
    path = write_probes(full, tmp_path / "set.jsonl")
    return path, path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_truncated_file_names_the_line(full, tmp_path) -> None:
    path, lines = _lines(full, tmp_path)
    path.write_text("".join(lines[:10]) + lines[10][:40], encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:11: "):
        read_probes(path)
    path.write_text("".join(lines[:10]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:11: expected {len(full.probes)} probes, found 9"):
        read_probes(path)


def test_hand_edited_probe_names_the_line(full, tmp_path) -> None:
    path, lines = _lines(full, tmp_path)
    raw = json.loads(lines[5])
    raw["messages"][-1]["content"] += " (edited)"
    lines[5] = json.dumps(raw) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:6: field id: .*does not match"):
        read_probes(path)


def test_bad_field_and_reordered_and_manifest(full, tmp_path) -> None:
    path, lines = _lines(full, tmp_path)
    raw = json.loads(lines[3])
    raw["expected"] = "maybe"
    path.write_text("".join(lines[:3]) + json.dumps(raw) + "\n" + "".join(lines[4:]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:4: field expected"):
        read_probes(path)
    path.write_text("".join([lines[0], lines[2], lines[1], *lines[3:]]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:1: field set_hash"):
        read_probes(path)
    path.write_text('{"probes": []}\n' + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:1: first line"):
        read_probes(path)
    path.write_text("".join([lines[0], lines[1], lines[1], *lines[2:]]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:3: field id: duplicate of line 2"):
        read_probes(path)


def test_parquet_damage(full, tmp_path) -> None:
    import pyarrow.parquet as pq

    path = write_probes(full, tmp_path / "set.parquet")
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[2]["template_id"] = "edited"
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    with pytest.raises(InputError, match=rf"^{path}:row 3: field id"):
        read_probes(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_probes(path)
    with pytest.raises(InputError, match=r"\.jsonl or \.parquet"):
        write_probes(full, tmp_path / "set.csv")


# ---------------------------------------------------------------- content loaders
def test_template_with_unknown_rule_names_file_and_id(tmp_path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        "templates:\n"
        "  - {id: x-01, rule: no-such-rule, expected: refuse, turns: [{user: hi}]}\n"
        "  - {id: x-02, rule: insults, expected: refuse, turns: [{user: 'hi {who}'}]}\n"
        "  - {id: x-03, rule: insults, expected: nope, turns: [{user: a}, {user: b}]}\n"
        "  - {id: x-04, rule: insults, expected: refuse, turns: [{user: a}, {assistant: b}]}\n"
    )
    with pytest.raises(ValidationErrors) as err:
        load_templates(f, ["insults"])
    problems = err.value.problems
    assert problems[0] == f"{f}: template 'x-01': unknown rule 'no-such-rule'"
    assert f"{f}: template 'x-02': placeholder {{who}} is not declared in slots or fills" in problems
    assert any(p.startswith(f"{f}: template 'x-03': field 'expected'") for p in problems)
    assert any(p.startswith(f"{f}: template 'x-03': turn 2 should be a assistant") for p in problems)
    assert f"{f}: template 'x-04': the last turn must be a user turn" in problems


def test_yaml_syntax_error_names_line(tmp_path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("templates:\n  - id: a\n    rule: [unclosed\n")
    with pytest.raises(InputError, match=rf"^{f}:\d+: YAML error"):
        load_templates(f)


def test_lexicon_and_benign_validation(tmp_path) -> None:
    f = tmp_path / "lexicon.yaml"
    f.write_text(
        "axes:\n  age:\n    - {term: old, plural: old people}\n    - {term: old, plural: x, preferred: true}\n"
    )
    with pytest.raises(ValidationErrors) as err:
        load_lexicon(f)
    assert err.value.problems == [
        f"{f}: axis 'age' item 1 (old): field 'preferred' must be true or false",
        f"{f}: axis 'age' item 2: duplicate term 'old'",
    ]
    b = tmp_path / "benign.yaml"
    b.write_text("benign:\n  - {id: b1, contrasts: weather, kind: homonym, text: hi}\n")
    with pytest.raises(ValidationErrors, match=f"{b}: benign item 'b1': 'contrasts'"):
        load_benign(b)


def test_fixture_content_loads(catalog) -> None:
    tpls = load_templates(FIX / "templates", catalog.rules)
    assert {t.id for t in tpls if t.identity} == {"stereotypes-01", "stereotypes-02", "stereotypes-03"}
    assert len(load_benign(FIX / "benign.yaml", catalog.rules)) == 6
