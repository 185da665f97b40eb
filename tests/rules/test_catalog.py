"""The built-in catalog: fixed ids, examples, coverage, version."""

import re
from pathlib import Path

import pytest
import yaml

from harmscope.rules import BUILTIN_DIR, load_catalog, taxonomy

FIXED_IDS = {
    "discrimination": ["stereotypes", "microaggressions", "identity-attacks", "exclusionary-norms", "unequal-quality"],
    "toxicity": ["threats", "sexual-aggression", "insults", "hate-harassment"],
    "anthropomorphism": ["no-body", "no-relationship", "no-feelings-opinions", "no-human-identity",
                         "no-identity-persona"],
    "misinformation": ["plausibility", "no-assumptions", "no-real-world-action", "no-medical-advice",
                       "no-legal-advice", "no-financial-advice", "no-conspiracies"],
    "harmful-assistance": ["general-harm", "hazardous-information", "cyber-weapons", "fraud-scams",
                           "disinformation", "surveillance", "illegal-acts", "self-harm", "manipulation"],
    "privacy": ["private-information", "private-inference"],
    "dialogue": ["make-sense", "stay-on-topic", "address-query", "no-repetition"],
}
HAZARDOUS = ["hazardous-information", "cyber-weapons", "self-harm", "general-harm", "illegal-acts", "surveillance"]


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_exactly_the_fixed_ids_one_file_per_group(cat):
    assert len(cat) == 36
    for group, ids in FIXED_IDS.items():
        assert [r.id for r in cat.select(f"group:{group}")] == ids
        assert (BUILTIN_DIR / f"{group}.yaml").is_file()
        assert all(Path(r.source).name == f"{group}.yaml" for r in cat.select(f"group:{group}"))
    assert cat.groups() == ["discrimination", "toxicity", "privacy", "misinformation", "harmful-assistance",
                            "anthropomorphism", "dialogue"]


def test_every_rule_has_enough_distinct_examples(cat):
    for r in cat:
        assert len(r.examples.violating) >= 6, r.id
        assert len(r.examples.compliant) >= 6, r.id
        texts = [" ".join(t.split()).lower() for t in r.examples.violating + r.examples.compliant]
        assert len(set(texts)) == len(texts), r.id
        assert len(r.text) > 40 and r.judges and r.risks, r.id


def test_every_measurable_risk_is_covered(cat):
    cov = cat.coverage()
    measurable = cov[cov["measurable"]]
    assert len(measurable) == 17
    assert (measurable["n_rules"] > 0).all(), measurable[measurable["n_rules"] == 0]["risk"].tolist()
    # and the hand count for one risk
    assert set(cov.set_index("risk").loc["III.2", "rules"].split(";")) == {
        "no-medical-advice", "no-legal-advice", "no-financial-advice", "self-harm"}


def test_axes_and_judges_are_from_the_vocabularies(cat):
    for r in cat:
        assert set(r.characteristics.axes) <= set(taxonomy.AXES), r.id
        assert set(r.judges) <= set(taxonomy.JUDGE_KINDS), r.id
        assert all(taxonomy.is_risk(x) for x in r.risks), r.id


def test_hazardous_violating_examples_are_placeholders(cat):
    for rid in HAZARDOUS:
        for text in cat.get(rid).examples.violating:
            assert re.search(r"\[[^\]]+\]", text), (rid, text)


def test_version_is_a_content_hash(cat, tmp_path):
    assert re.fullmatch(r"[0-9a-f]{16}", cat.version)
    assert load_catalog().version == cat.version
    # same content from a copied folder: same version; one edited word: a new version
    for f in BUILTIN_DIR.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_catalog(tmp_path, builtin=False).version == cat.version
    p = tmp_path / "toxicity.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("name: No threats", "name: No threats!"), encoding="utf-8")
    assert load_catalog(tmp_path, builtin=False).version != cat.version


def test_builtin_files_are_plain_yaml_with_group_header():
    for f in BUILTIN_DIR.glob("*.yaml"):
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert data["group"] == f.stem and isinstance(data["rules"], list)
