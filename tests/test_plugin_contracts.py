"""One contract over every registered plugin: adding a component needs no new boilerplate test.

Every transform, judge, classifier backend and model adapter has a name, a version and a
description; judge rule kinds exist in the taxonomy; every judge that is not an LLM grader ships
measured validation figures; every rule's risk ids exist (checked by the catalog loader itself).
Reversible transforms are round-tripped in tests/benchmarks/probes/test_transforms.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmscope.benchmarks.probes.transforms import TRANSFORMS
from harmscope.classifiers.backends import BACKENDS
from harmscope.classifiers.judges import JUDGES
from harmscope.models import MODELS
from harmscope.rules import builtin_catalog
from harmscope.rules.taxonomy import JUDGE_KINDS, is_risk

REGISTRIES = {"transform": TRANSFORMS, "judge": JUDGES, "backend": BACKENDS, "model": MODELS}
ENTRIES = [(kind, e) for kind, reg in REGISTRIES.items() for e in reg]


def test_every_registry_has_entries():
    for kind, reg in REGISTRIES.items():
        assert reg.names(), f"no {kind} registered"


@pytest.mark.parametrize(("kind", "entry"), ENTRIES, ids=[f"{k}:{e.name}" for k, e in ENTRIES])
def test_entry_metadata(kind, entry):
    assert entry.name and entry.name == entry.name.strip()
    assert entry.version
    assert len(entry.description) >= 10, f"{kind} {entry.name} needs a description"
    spec = entry.spec(x=1)
    assert spec == {"name": entry.name, "version": entry.version, "args": {"x": 1}}


@pytest.mark.parametrize("entry", list(JUDGES), ids=[e.name for e in JUDGES])
def test_judges_declare_known_kinds_and_ship_validation(entry):
    kinds = entry.meta.get("kinds") or []
    assert kinds and all(k in JUDGE_KINDS for k in kinds), kinds
    if entry.name == "llm" or entry.meta.get("grader"):
        return  # an LLM grader or guard model is validated per model with `harmscope judges validate`
    path = Path(__file__).parents[1] / "harmscope/classifiers/judges/data/validation" / f"{entry.name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(data)
    assert '"n"' in text and ('"accuracy"' in text or '"precision"' in text), f"{entry.name}: no figures"


def test_every_rule_names_known_risks_and_judges():
    for rule in builtin_catalog().rules.values():
        assert all(is_risk(r) for r in rule.risks), rule.id
        assert all(j in JUDGE_KINDS for j in rule.judges), rule.id
