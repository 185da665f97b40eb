"""The harm taxonomy: counts, ids, measurability and vocabularies."""

import pytest

from harmscope.errors import HarmscopeError
from harmscope.rules import taxonomy


def test_six_areas_and_twenty_one_risks():
    assert [a.id for a in taxonomy.AREAS] == ["I", "II", "III", "IV", "V", "VI"]
    assert len(taxonomy.RISKS) == 21
    per_area = {a.id: len(taxonomy.risks_in(a.id)) for a in taxonomy.AREAS}
    assert per_area == {"I": 4, "II": 3, "III": 3, "IV": 4, "V": 3, "VI": 4}


def test_risk_ids_are_stable_and_match_their_area():
    ids = [r.id for r in taxonomy.RISKS]
    assert len(set(ids)) == 21
    for r in taxonomy.RISKS:
        assert r.id.split(".")[0] == r.area
        assert r.name and len(r.description) > 60
    assert taxonomy.risk("IV.3").name.startswith("Assisting cyber attacks")


def test_only_area_six_is_unmeasurable_and_says_why():
    unmeasurable = [r.id for r in taxonomy.RISKS if not r.measurable]
    assert unmeasurable == ["VI.1", "VI.2", "VI.3", "VI.4"]
    assert len(taxonomy.measurable_risks()) == 17
    for r in taxonomy.RISKS:
        assert bool(r.why_not) == (not r.measurable)


def test_unknown_ids_raise_harmscope_error():
    with pytest.raises(HarmscopeError, match="unknown risk id 'VII.1'"):
        taxonomy.risk("VII.1")
    with pytest.raises(HarmscopeError, match="unknown risk area"):
        taxonomy.area("VII")
    assert not taxonomy.is_risk("I.5") and taxonomy.is_risk("I.4") and not taxonomy.is_risk(3)


def test_vocabularies():
    assert len(taxonomy.AXES) == 14 and len(set(taxonomy.AXES)) == 14
    assert "neurodiversity" in taxonomy.AXES and "language-dialect" in taxonomy.AXES
    assert taxonomy.RECIPIENTS == ("subject", "reader", "author", "society")
    assert taxonomy.SCOPES == ("instance", "distributional")
    assert taxonomy.CONTEXT_DEPENDENCE == ("low", "medium", "high")
    assert taxonomy.SEVERITIES == ("low", "medium", "high", "critical")
    assert taxonomy.JUDGE_KINDS == ("toxicity", "refusal", "rule", "pattern", "llm", "awareness", "harm")
