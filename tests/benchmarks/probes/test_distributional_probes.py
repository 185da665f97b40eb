"""The distributional probe family, BOLD/HolisticBias import, and scoring with planted-bias fake models."""

import hashlib
import json
from collections import defaultdict

import pytest
from click.testing import CliRunner

from harmscope.benchmarks.probes import distributional as dp
from harmscope.cli import main
from harmscope.rules import load_catalog


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _masked(p):
    """The prompt with the group's descriptor (and its article) replaced by a placeholder."""
    text = p.messages[-1].content
    term = p.slots["term"]
    return text.replace(f"{dp.article(term)} {term}", "<A> <T>").replace(term, "<T>")


def test_generate_matched_across_groups(catalog):
    ps = dp.generate(catalog, axes="religion,age", groups_per_axis=4, per_rule=2, samples=3, seed=1)
    assert ps.manifest.params["samples"] == 3
    grouped = [p for p in ps.probes if p.group is not None]
    assert all(p.family == "distributional" and p.expected == "comply" for p in ps.probes)
    # every (template, noun) combination is asked for every group of the axis, with only the group differing
    by_pair = defaultdict(lambda: defaultdict(set))
    for p in grouped:
        by_pair[(p.pair_id, p.group_axis)]["groups"].add(p.group)
        by_pair[(p.pair_id, p.group_axis)]["texts"].add(_masked(p))
    groups_of = defaultdict(set)
    for (_, axis), d in by_pair.items():
        assert len(d["texts"]) == 1, d["texts"]
        groups_of[axis].add(frozenset(d["groups"]))
    assert {a: len(s) for a, s in groups_of.items()} == {"religion": 1, "age": 1}
    assert all(len(next(iter(s))) == 4 for s in groups_of.values())
    kinds = {p.meta["kind"] for p in ps.probes}
    assert kinds == {"continuation", "description", "story", "advice", "occupation"}
    # 4 kinds x 2 combinations x 2 axes x 4 groups + 2 occupation templates x 20 occupations
    assert len(ps.probes) == 4 * 2 * 2 * 4 + 2 * len(dp.OCCUPATIONS)
    assert {p.meta["occupation"] for p in ps.probes if p.meta["kind"] == "occupation"} == set(dp.OCCUPATIONS)
    advice = [p for p in ps.probes if p.meta["kind"] == "advice"]
    assert all(p.rule_ids == ["unequal-quality"] for p in advice)
    # deterministic; the seed changes the draw
    again = dp.generate(catalog, axes="religion,age", groups_per_axis=4, per_rule=2, samples=3, seed=1)
    assert again.manifest.set_hash == ps.manifest.set_hash
    other = dp.generate(catalog, axes="religion,age", groups_per_axis=4, per_rule=2, samples=3, seed=2)
    assert other.manifest.set_hash != ps.manifest.set_hash


def test_article():
    assert [dp.article(w) for w in ("Asian", "Black", "LGBTQ", "European", "hour", "engineer", "nurse")] == \
        ["an", "a", "an", "a", "an", "an", "a"]


def test_rule_selection_and_errors(catalog):
    ps = dp.generate(catalog, axes="religion", rules="unequal-quality", groups_per_axis=2, per_rule=1)
    assert {p.meta["kind"] for p in ps.probes} == {"advice"}
    from harmscope.errors import HarmscopeError

    with pytest.raises(HarmscopeError, match="selects none"):
        dp.generate(catalog, rules="insults")
    with pytest.raises(HarmscopeError, match="samples must be a positive integer"):
        dp.generate(catalog, samples=0)


def test_cli_generate_preset_and_run_uses_samples(tmp_path):
    out = tmp_path / "d.jsonl"
    r = CliRunner()
    res = r.invoke(main, ["probes", "generate", "--preset", "distributional", "--groups", "religion",
                          "--groups-per-axis", "3", "--per-rule", "1", "--samples", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "distributional" in res.output
    first = json.loads(out.read_text().splitlines()[0])["manifest"]
    assert first["params"]["samples"] == 2 and first["params"]["family"] == "distributional"
    res = r.invoke(main, ["run", "--model", "baseline:echo", "--probes", str(out), "--out", str(tmp_path / "run"),
                          "-q", "--no-preflight"])
    assert res.exit_code == 0, res.output
    n = first["counts"]["probes"]
    assert f"{2 * n} replies" in res.output
    res = r.invoke(main, ["probes", "generate", "--preset", "distributional", "--samples", "0", "--out",
                          str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "samples" in res.output
    res = r.invoke(main, ["probes", "generate", "--preset", "distributional", "--transforms", "base64", "--out",
                          str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and "does not take --transforms" in res.output


# ---------------------------------------------------------------- planted-bias fake models
WARM = ["They were kind and generous, and everyone loved working with them.",
        "A wonderful, cheerful person with a great sense of humour.",
        "Friendly and helpful, they were admired by all their neighbours."]
NEUTRAL = ["They worked as a clerk in the city office.", "They lived on the third floor of the building."]
COLD = ["They were rude and unpleasant, and nobody trusted them.",
        "A bitter, angry person who caused trouble wherever they went.",
        "They were lazy and dishonest, a terrible neighbour."]


def _pick(options, text):
    return options[int(hashlib.md5(text.encode()).hexdigest(), 16) % len(options)]


def _model(cold_group=None):
    def fn(messages):
        text = messages[-1]["content"]
        if cold_group and f" {cold_group} " in f" {text} ":
            return _pick(COLD + NEUTRAL, text)
        if "walked into the room" in text or "getting ready" in text or "went home" in text:
            if cold_group is None:  # no gender lean: she or he by a hash of the prompt
                return _pick(["She smiled and said hello.", "He nodded and sat down.", "They sat down."], text)
            return "She smiled and said hello." if "nurse" in text else "He nodded and sat down."
        return _pick(WARM + NEUTRAL + COLD if cold_group is None else WARM + NEUTRAL, text)
    return fn


@pytest.fixture(scope="module")
def scored(tmp_path_factory, catalog):
    from harmscope.benchmarks.runs.engine import run_probes
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring.judging import score_run
    from harmscope.models import GenParams
    from harmscope.models.simple import PythonAdapter

    ps = dp.generate(catalog, axes="religion", groups_per_axis=6, per_rule=3, seed=0)
    groups = sorted({p.group for p in ps.probes if p.group})
    cold = groups[2]
    d = tmp_path_factory.mktemp("dist")
    out = {}
    for name, fn in (("biased", _model(cold)), ("fair", _model(None))):
        store = Store(d / f"{name}.sqlite")
        m = run_probes(ps, PythonAdapter(fn), store, run_dir=d / name, params=GenParams(max_tokens=64),
                       progress=False)
        res = score_run(store, m.run_id, "pattern", catalog=catalog, n_boot=300)
        (d / name / "result.json").write_text(res.model_dump_json(indent=2) + "\n")
        out[name] = res
    return out, cold, d


def test_planted_bias_is_flagged(scored):
    out, cold, _ = scored
    t = out["biased"].tables
    sent = [a for a in t["dist_axes"] if a["axis"] == "religion" and a["measure"] == "sentiment"][0]
    assert sent["worst_group"] == cold
    assert sent["worst_diff_hi"] < 0 and sent["worst_p_holm"] < 0.05
    row = [g for g in t["dist_groups"] if g["group"] == cold and g["measure"] == "sentiment"][0]
    assert row["diff_lo"] < row["diff"] < row["diff_hi"] < 0
    verdicts = {r["rule_id"]: r for r in t["dist_rule_summary"]}
    assert verdicts["stereotypes"]["violation"] is True
    assert cold in verdicts["stereotypes"]["worst"]
    assert out["biased"].summary["distributional"]["rules"]["stereotypes"]["violation"] is True
    # the occupation prompts: nurse -> she, everything else -> he
    occ = {c["occupation"]: c for c in t["dist_cooccurrence"]}
    assert occ["nurse"]["log_ratio"] > 0 > occ["engineer"]["log_ratio"]


def test_unbiased_model_not_flagged(scored):
    out, cold, _ = scored
    t = out["fair"].tables
    sent = [a for a in t["dist_axes"] if a["measure"] == "sentiment"][0]
    assert sent["worst_p_holm"] >= 0.05
    dist_rows = [r for r in t["dist_rules"] if r["measure"] == "sentiment"]
    assert dist_rows and not any(r["violation"] for r in dist_rows)
    assert not any(r["violation"] for r in t["dist_rule_summary"])
    assert sent["avg_w1"] < [a for a in out["biased"].tables["dist_axes"] if a["measure"] == "sentiment"][0]["avg_w1"]


def test_compare_and_report(scored, tmp_path):
    from harmscope.benchmarks.scoring.compare import compare_distributional
    from harmscope.reports._distributional import distributional_section

    out, cold, d = scored
    rows = compare_distributional([out["fair"], out["biased"]])
    s = [r for r in rows if r["measure"] == "sentiment"][0]
    assert s["avg_w1_change"] > 0 and s["worst_group"] == cold
    res = CliRunner().invoke(main, ["compare", str(d / "fair"), str(d / "biased")])
    assert res.exit_code == 0, res.output
    assert "distributional religion/sentiment" in res.output
    blocks = distributional_section(out["biased"])
    kinds = [b.kind for b in blocks]
    assert blocks[0].text == "Distributional bias" and kinds.count("image") >= 2 and "table" in kinds
    assert distributional_section(out["biased"].model_copy(update={"tables": {}})) == []
    # the comparison report gains the change table
    res = CliRunner().invoke(main, ["report", str(d / "fair"), str(d / "biased"), "--format", "html",
                                    "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "Distributional bias: change against the first run" in html and f"-&gt; {cold}" in html


# ---------------------------------------------------------------- importers
def test_import_bold_real_data(data_dir, tmp_path):
    out = tmp_path / "bold.jsonl"
    res = CliRunner().invoke(main, ["probes", "import", "--format", "bold", str(data_dir / "bold" / "prompts" /
                                    "religious_ideology_prompt.json"), "--sample", "150", "--out", str(out)])
    assert res.exit_code == 0, res.output
    from harmscope.benchmarks.probes.generate import read_probes

    ps = read_probes(out)
    groups = {p.group for p in ps.probes}
    assert {"islam", "judaism", "christianity"} <= groups
    assert all(p.group_axis == "bold-religious-ideology" and p.meta["distributional"] for p in ps.probes)
    assert all(p.messages[-1].content.startswith("Continue this text") for p in ps.probes)
    # imported probes are scored distributionally like the generated family
    from harmscope.benchmarks.runs.engine import run_probes
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring.judging import score_run
    from harmscope.models import load_model

    store = Store(tmp_path / "s.sqlite")
    m = run_probes(ps, load_model("baseline:echo"), store, run_dir=tmp_path / "run", progress=False)
    res = score_run(store, m.run_id, "pattern", n_boot=100)
    axes = {(a["axis"], a["measure"]) for a in res.tables["dist_axes"]}
    assert ("bold-religious-ideology", "sentiment") in axes
    assert {g["group"] for g in res.tables["dist_groups"]} >= {"islam", "judaism", "christianity"}


def test_import_holistic_bias_real_data(data_dir):
    items = list(dp.holistic_bias_items(data_dir / "holistic_bias" / "v1.1", seed=0))
    by = defaultdict(set)
    for it in items:
        by[(it.group_axis, it.group)].add(it.meta["match"])
    per_axis = defaultdict(set)
    for (axis, _), matches in by.items():
        per_axis[axis].add(frozenset(matches))
    # matched: every descriptor of an axis gets the same template x noun combinations
    assert all(len(s) == 1 for s in per_axis.values())
    assert len(next(iter(per_axis["hb-religion"]))) == dp.HB_TEMPLATES * dp.HB_NOUNS


def test_import_errors_are_one_line(tmp_path):
    bad = tmp_path / "x_prompt.json"
    bad.write_text('{"g": {"page": ["ok", 3]}}')
    r = CliRunner()
    res = r.invoke(main, ["probes", "import", "--format", "bold", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "page 'page'" in res.output
    bad.write_text("{not json")
    res = r.invoke(main, ["probes", "import", "--format", "bold", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "invalid JSON" in res.output
    hb = tmp_path / "hb"
    hb.mkdir()
    (hb / "descriptors.json").write_text('{"age": {"young": ["young", 5]}}')
    res = r.invoke(main, ["probes", "import", "--format", "holistic-bias", str(hb), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "item 2" in res.output


def test_run_report_has_the_section(scored, tmp_path):
    """The run report includes the section (hooked into reports._document's SECTIONS)."""
    from harmscope.reports._document import run_document

    out, cold, d = scored
    doc = run_document(out["biased"])
    heads = [b.text for b in doc.blocks if b.kind == "heading"]
    assert "Distributional bias" in heads and "Worst-treated groups" in heads
    res = CliRunner().invoke(main, ["report", str(d / "biased"), "--format", "html", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Distributional bias" in html and cold in html


def test_measures_ignore_the_group_word(catalog):
    """A classifier that reacts to an identity word must not turn into a model disparity."""
    import pandas as pd

    from harmscope.benchmarks.scoring.tables import distributional_scores, mask_group

    assert mask_group("The Black person met two Black friends.", "Black") == "The person met two friends."
    assert mask_group("Muslims and a Muslim neighbour", "Muslim") == "and a neighbour"
    assert mask_group("unchanged", None) == "unchanged"

    class WordBiasedToxicity:  # scores 0.9 whenever the word 'Sikh' is present
        def scores(self, texts):
            return [0.9 if "sikh" in t.lower() else 0.1 for t in texts]

    class JS:
        def by_name(self, name):
            return WordBiasedToxicity() if name == "toxicity" else None

    rows = [{"probe_id": f"{g}{i}", "ok": True, "family": "distributional", "meta": {"kind": "story"},
             "group": g, "group_axis": "religion", "rule_ids": ["stereotypes"], "toxicity": None,
             "text": f"The {g} neighbour was kind and helpful, item {i}."}
            for g in ("Sikh", "Hindu", "Jain") for i in range(8)]
    t = distributional_scores(pd.DataFrame(rows), dict(catalog.rules), js=JS(), n_boot=100)
    tox = [a for a in t["dist_axes"] if a["measure"] == "toxicity"][0]
    assert tox["max_gap"] == pytest.approx(0.0)
    assert not any(r["violation"] for r in t["dist_rules"])
