"""Probe families are looked up through the FAMILIES registry: built-in order and output pinned,
a plugin family (section or standalone) joins without touching generate()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harmscope.benchmarks.probes import presets
from harmscope.benchmarks.probes.families import FAMILIES, Family, Section
from harmscope.benchmarks.probes.generate import generate
from harmscope.errors import HarmscopeError
from harmscope.rules import load_catalog

# set hashes of the packaged content before the families moved into the registry (issue #13);
# a deliberate change to the packaged content or to a family changes them (update with a note)
PINNED = {"smoke": "579cb43f91666b13", "distributional": "d8efafbe959bcd3c"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("preset", sorted(PINNED))
def test_registry_lookup_keeps_the_packaged_sets(catalog, preset) -> None:
    assert generate(catalog, preset=preset).manifest.set_hash == PINNED[preset]


def test_mixed_set_follows_registration_order(catalog) -> None:
    ps = generate(catalog, rules="insults,stereotypes", per_rule=3, escalations=2, framing_pairs=2, hint_pairs=2,
                  benign_ratio=0.3)
    seen = list(dict.fromkeys(p.family for p in ps.probes))
    sections = [e.name for e in FAMILIES if not e.meta.get("standalone")]
    assert seen == sections == ["standard", "escalation", "framing", "hint", "benign"]
    assert "distributional" in FAMILIES and FAMILIES.get("distributional").meta["standalone"] is True


class Echo(Family):
    """Toy section family: repeats one benign prompt per selected rule, asked for one more than it can make."""

    name = "toy-echo"
    version = "1"

    def planned(self, s: Section, n_before: int) -> int:
        return len(s.with_t)

    def build(self, s: Section) -> int:
        for r in s.with_t:
            s.builder.add(rule_ids=[r.id], template_id="toy", messages=[{"role": "user", "content": f"echo {r.id}"}],
                          expected="comply", family=self.name)
        return len(s.with_t) + 1


class Whole:
    """Toy standalone family: a set of its own from a preset."""

    name = "toy-whole"
    version = "1"
    standalone = True
    options = ("per_rule",)
    scope = "toy prompts only"

    def build_set(self, catalog: Any, *, per_rule: int | None, seed: int, **kw: Any):
        return generate(catalog, rules=kw["rules"], per_rule=per_rule, seed=seed)


@pytest.fixture
def toy_families() -> Iterator[None]:
    FAMILIES.register(Echo)
    FAMILIES.register(Whole)
    presets.PRESETS["toy"] = {"family": "toy-whole", "per_rule": 2}
    presets.PRESETS["bad"] = {"family": "standard"}
    try:
        yield
    finally:
        FAMILIES._entries.pop("toy-echo", None)
        FAMILIES._entries.pop("toy-whole", None)
        presets.PRESETS.pop("toy", None)
        presets.PRESETS.pop("bad", None)


def test_plugin_section_family_joins_the_set(catalog, toy_families) -> None:
    kw = {"rules": "insults,stereotypes", "per_rule": 2, "benign_ratio": 0.2}
    ps = generate(catalog, **kw)
    toy = [p for p in ps.probes if p.family == "toy-echo"]
    assert sorted(p.messages[-1].content for p in toy) == ["echo insults", "echo stereotypes"]
    assert ps.probes[-2:] == toy  # runs after the built-in sections
    c = ps.manifest.counts
    assert c["toy-echo"] == 2 and c["shortfall_toy-echo"] == 1 and c["probes"] == len(ps.probes)
    FAMILIES._entries.pop("toy-echo")
    without = generate(catalog, **kw)
    assert [p.id for p in without.probes] == [p.id for p in ps.probes if p.family != "toy-echo"]


def test_preset_family_is_a_registry_lookup(catalog, toy_families) -> None:
    ps = generate(catalog, preset="toy", rules="insults", seed=1)
    assert ps.manifest.counts["standard"] == 2  # the preset's per_rule reached the family
    with pytest.raises(HarmscopeError, match=r"^the toy preset does not take --transforms, --hint-pairs "
                                             r"\(toy prompts only\)$"):
        generate(catalog, preset="toy", transforms="base64", hint_pairs=1)
    with pytest.raises(HarmscopeError, match="names the probe family 'standard', which builds no set of its own"):
        generate(catalog, preset="bad")
    presets.PRESETS["bad"] = {"family": "nope"}
    with pytest.raises(HarmscopeError, match=r"unknown probe family 'nope' \(known: .*toy-whole"):
        generate(catalog, preset="bad")
