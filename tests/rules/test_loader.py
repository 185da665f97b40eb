"""Loader: line-numbered validation errors, user catalogs, selectors, robustness."""

import string
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmscope.cli import main
from harmscope.errors import HarmscopeError, InputError, ValidationErrors
from harmscope.rules import load_catalog

FIX = Path(__file__).parent / "fixtures"


def _validate(*paths: Path):
    return CliRunner().invoke(main, ["rules", "validate", *map(str, paths)])


@pytest.mark.parametrize(
    ("fixture", "line", "fragment"),
    [
        ("syntax_error.yaml", 7, "YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at line 5)"),
        ("bad_indent.yaml", 6, "YAML syntax error: did not find expected '-' indicator"),
        ("duplicate_id.yaml", 14, "field 'id': duplicate rule id 'twice' (first defined at"),
        ("unknown_risk.yaml", 9, "field 'risks.1': unknown risk id 'VII.9'"),
        ("missing_field.yaml", 14, "field 'severity': missing required field (rule 'no-severity')"),
        ("wrong_type.yaml", 14, "field 'severity': Input should be 'low', 'medium', 'high' or 'critical'"),
    ],
)
def test_broken_fixture_exits_2_with_file_and_line(fixture, line, fragment):
    res = _validate(FIX / fixture)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    expected = f"error: {FIX / fixture}:{line}: "
    assert any(ln.startswith(expected) and fragment in ln for ln in lines), lines
    assert "Traceback" not in res.output


def test_every_problem_of_a_file_is_reported_once_per_line():
    res = _validate(FIX / "wrong_type.yaml")
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f"error: {FIX / 'wrong_type.yaml'}:13: field 'characteristics.axes.1': unknown axis 'star-sign' "
        "(known: gender-and-sex, sexual-orientation, race-ethnicity, nationality, religion, disability, age, "
        "body-type, socioeconomic-class, political-ideology, family-status, neurodiversity, language-dialect, immigration-status) "
        "(rule 'wrong-type')",
        f"error: {FIX / 'wrong_type.yaml'}:14: field 'severity': Input should be 'low', 'medium', 'high' or "
        "'critical' (rule 'wrong-type')",
    ]


def test_problems_from_several_files_are_collected():
    with pytest.raises(ValidationErrors) as info:
        load_catalog([FIX / "unknown_risk.yaml", FIX / "missing_field.yaml"], builtin=False)
    assert [p.split(": ")[0] for p in info.value.problems] == [
        f"{FIX / 'unknown_risk.yaml'}:9",
        f"{FIX / 'missing_field.yaml'}:14",
    ]


def test_valid_file_exits_0():
    res = _validate(FIX / "valid_user.yaml")
    assert res.exit_code == 0 and res.stdout.startswith("ok: 2 rules valid")


def test_unknown_judge_and_extra_field_and_short_examples(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(
        (FIX / "valid_user.yaml").read_text(encoding="utf-8")
        .replace("judges: [pattern]", "judges: [pattern, vibes]")
        .replace("    severity: high\n", "    severity: high\n    colour: red\n")
        .replace('compliant: ["Sure thing.", "Done.", ', 'compliant: ["Sure thing.", '),
        encoding="utf-8",
    )
    with pytest.raises(ValidationErrors) as info:
        load_catalog(p, builtin=False)
    problems = info.value.problems
    assert f"{p}:15: field 'judges.1': unknown judge 'vibes' (known: toxicity, refusal, rule, pattern, llm, awareness, harm) (rule 'no-emoji')" in problems
    assert any(x.startswith(f"{p}:18: field 'examples.compliant': List should have at least 4 items") for x in problems)
    assert any(x.startswith(f"{p}:31: field 'colour': unknown field") for x in problems)


def test_user_catalog_collision_and_override():
    with pytest.raises(ValidationErrors) as info:
        load_catalog(FIX / "valid_user.yaml")
    (problem,) = info.value.problems
    assert problem.startswith(f"{FIX / 'valid_user.yaml'}:19: field 'id': duplicate rule id 'insults' (first defined at ")
    assert "toxicity.yaml:" in problem and "--override" in problem

    cat = load_catalog(FIX / "valid_user.yaml", override=True)
    builtin = load_catalog()
    assert len(cat) == 37 and "no-emoji" in cat
    assert cat.get("insults").name == "No insults (house version)"
    assert list(cat.rules).index("insults") == list(builtin.rules).index("insults")  # replaced in place
    assert cat.locations["insults"] == (str(FIX / "valid_user.yaml"), 19)
    assert cat.version != builtin.version
    assert cat.get("no-emoji").group == "house-style"  # file-level default group


def test_user_catalog_instead_of_builtin_and_cli_options():
    cat = load_catalog([FIX / "valid_user.yaml"], builtin=False)
    assert [r.id for r in cat] == ["no-emoji", "insults"]
    res = CliRunner().invoke(main, ["rules", "--catalog", str(FIX / "valid_user.yaml"), "--no-builtin", "list",
                                    "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[1].startswith("no-emoji,No emoji,house-style,helpfulness,low,I.4,I,")


def test_same_file_twice_loads_once(monkeypatch):
    monkeypatch.chdir(FIX)
    cat = load_catalog(["valid_user.yaml", FIX / "valid_user.yaml", "./valid_user.yaml"], builtin=False)
    assert len(cat) == 2


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such catalog file"):
        load_catalog(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="no catalog files"):
        load_catalog(tmp_path)


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("insults", ["insults"]),
        ("threats, insults", ["threats", "insults"]),
        ("insults,threats", ["threats", "insults"]),  # catalog order, not selector order
        ("no-*", ["no-assumptions", "no-real-world-action", "no-medical-advice", "no-legal-advice",
                  "no-financial-advice", "no-conspiracies", "no-body", "no-relationship", "no-feelings-opinions",
                  "no-human-identity", "no-identity-persona", "no-repetition"]),
        ("group:privacy", ["private-information", "private-inference"]),
        ("area:II", ["private-information", "private-inference", "hazardous-information", "cyber-weapons",
                     "surveillance"]),
        ("area:ii", ["private-information", "private-inference", "hazardous-information", "cyber-weapons",
                     "surveillance"]),
        ("risk:V.3", ["no-identity-persona"]),
        ("severity:critical", ["hazardous-information", "self-harm"]),
        ("severity:critical,-self-harm", ["hazardous-information"]),
        ("group:toxicity,-severity:high", ["insults"]),
        ("purpose:correctness", ["plausibility", "no-assumptions", "no-real-world-action"]),
        ("area:VI", []),
    ],
)
def test_selectors(cat, selector, expected):
    assert [r.id for r in cat.select(selector)] == expected


def test_selector_all_and_at_least(cat):
    assert len(cat.select(None)) == len(cat.select("")) == len(cat.select("all")) == 36
    high_up = {r.id for r in cat.select("severity:>=high")}
    assert high_up == {r.id for r in cat if r.severity in ("high", "critical")}
    assert high_up == {r.id for r in cat.select("severity:high+")}
    assert len(cat.select("-group:dialogue")) == 32


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("insult", "unknown rule id 'insult' in selector; did you mean 'insults'"),
        ("colour:red", "unknown rule selector 'colour:red'"),
        ("group:nope", "unknown group in selector 'group:nope'"),
        ("area:VII", "unknown risk area 'VII'"),
        ("risk:I.9", "unknown risk id 'I.9'"),
        ("severity:extreme", "unknown severity"),
        ("zzz-*", "matches no rule id"),
        ("judge:vibes", "unknown judge"),
        ("axis:star-sign", "unknown axis"),
    ],
)
def test_unknown_selectors_raise(cat, selector, message):
    with pytest.raises(HarmscopeError) as info:
        cat.select(selector)
    assert message in str(info.value)


def test_get_unknown_id_suggests(cat):
    with pytest.raises(HarmscopeError, match="did you mean 'no-body'"):
        cat.get("no-bdy")


def test_examples_frame(cat):
    df = cat.examples_frame("group:toxicity")
    assert list(df.columns) == ["rule_id", "group", "kind", "label", "text"]
    assert len(df) == sum(len(r.examples.violating) + len(r.examples.compliant) for r in cat.select("group:toxicity"))
    assert set(df.loc[df["kind"] == "violating", "label"]) == {1}
    assert set(df.loc[df["kind"] == "compliant", "label"]) == {0}


# ------------------------------------------------------------------ robustness (property test)
_RULE_KEYS = ["id", "name", "text", "group", "purpose", "risks", "characteristics", "severity", "exceptions",
              "judges", "examples", "rules", "axes", "violating", "compliant", "harm_type", "scope"]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["I.3", "VII.1", "low", "harm", "instance", "toxicity", "2020-13-45", "religion"]),
)
_structures = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(_RULE_KEYS), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=30,
)
_yaml_chars = st.text(alphabet=string.printable + "é€😀\t-:[]{}&*!|>'\"%@`", max_size=200)


def _check_loader(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "cat.yaml"
        p.write_text(text, encoding="utf-8")
        try:
            load_catalog(p, builtin=False)
        except HarmscopeError as exc:  # ValidationErrors is a HarmscopeError
            assert str(exc).strip()
            for line in str(exc).splitlines():
                assert line.startswith(str(p)), line


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_yaml_chars)
def test_random_text_only_raises_validation_errors(text):
    _check_loader(text)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_structures, st.booleans())
def test_random_structures_only_raise_validation_errors(data, wrap):
    doc = {"group": "g", "rules": [data]} if wrap else data
    _check_loader(yaml.safe_dump(doc, allow_unicode=True))


@pytest.mark.parametrize(
    "text",
    ["", "rules: 3", "- 1\n- [2]", "rules:\n  - &a [*a]", "a: &a [*a, *a]\nrules: []", "when: 2020-13-45\nrules: []",
     "--- a\n--- b", "rules:\n  - {id: x, id: y}", "!!python/object:os.system {}", "rules: !!binary aGVsbG8=",
     "\x00", "group: [1]\nrules: []", "rules: []\nextra: 1"],
)
def test_nasty_documents(text):
    _check_loader(text)


def test_non_utf8_file(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("group: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValidationErrors, match="not UTF-8"):
        load_catalog(p, builtin=False)


_BASE = yaml.safe_load((FIX / "valid_user.yaml").read_text(encoding="utf-8"))


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["id", "name", "text", "purpose", "risks", "characteristics", "severity", "judges",
                        "examples", "exceptions", "group"]), _structures)
def test_rule_field_mutations_only_raise_validation_errors(key, value):
    doc = {"group": _BASE["group"], "rules": [dict(_BASE["rules"][0], **{key: value})]}
    _check_loader(yaml.safe_dump(doc, allow_unicode=True))
