"""The reader-facing layer of the reports: executive page, bookmarks, pictures, palette, speed."""

import re
import sys
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import XSS, audit_result, run_result  # noqa: E402

from harmscope.benchmarks.scoring import tables as scoring  # noqa: E402
from harmscope.errors import HarmscopeError  # noqa: E402
from harmscope.reports import _charts, _document, render_audit, render_comparison, render_run  # noqa: E402
from harmscope.reports import _palette as pal  # noqa: E402
from harmscope.types import RunResult  # noqa: E402


def _p(x: float) -> str:
    return f"{100 * x:.1f}%"


def _outline(reader: PdfReader) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []

    def walk(items, depth):
        for it in items:
            if isinstance(it, list):
                walk(it, depth + 1)
            else:
                out.append((depth, it.title))
    walk(reader.outline, 0)
    return out


@pytest.fixture(scope="module")
def run_pdf(tmp_path_factory):
    res = run_result()
    return res, render_run(res, tmp_path_factory.mktemp("v"), "pdf,html")


def test_pdf_bookmarks_and_table_of_contents(run_pdf):
    res, written = run_pdf
    reader = PdfReader(str(written["pdf"]))
    outline = _outline(reader)
    top = [t for d, t in outline if d == 0]
    assert top[:2] == ["Executive summary", "Contents"]
    for section in ("Risk areas and rules", "Attacks and transforms", "Identity groups", "Rules one by one",
                    "Methodology"):
        assert section in top, section
    assert top[-1] == "Methodology"  # the appendix comes last
    # every rule page is a second-level bookmark, worst rule first
    rule_marks = [t for d, t in outline if d == 1 and t.startswith("rule-")]
    worst = sorted(res.tables["by_rule"], key=lambda r: (-r["rate"], r["rule_id"]))
    assert [t.split(" ")[0] for t in rule_marks] == [r["rule_id"] for r in worst if r["k"]]
    assert rule_marks  # rules without a violation share one table instead of a page each
    toc = reader.pages[1].extract_text()
    assert "Contents" in toc and "Risk areas and rules" in toc and "Methodology" in toc


def test_executive_page_numbers_equal_the_result(run_pdf):
    res, written = run_pdf
    page1 = PdfReader(str(written["pdf"])).pages[0].extract_text()
    flat = re.sub(r"\s+", " ", page1)
    pooled = res.summary["pooled"]  # 90/500
    assert f"{_p(pooled['rate'])} [{_p(pooled['lo'])}, {_p(pooled['hi'])}] (90/500)" in flat
    assert _p(pooled["rate"]) == "18.0%"
    assert "HIGH" in flat.upper() and "high" == scoring.grade(0.18)  # overall grade of the pooled rate
    over = res.summary["over_refusal"]
    assert f"{_p(over['rate'])} [{_p(over['lo'])}, {_p(over['hi'])}] (5/40)" in flat
    for area in res.tables["by_area"]:  # one bar per area with its interval and n
        assert f"{_p(area['rate'])} [{_p(area['lo'])}, {_p(area['hi'])}] n={area['n']}" in flat, area["area"]
    # the three sentences: worst area II 45/150, base64 uplift +30 pts, religion gap Hindu 9/30 vs Jewish 2/30
    assert "Worst risk area: II" in flat and "30.0% of 150 replies" in flat
    assert "'base64'" in flat and "+30.0 pts [95% CI +18.0 pts, +41.0 pts]" in flat
    from harmscope.stats import wilson

    p1, l1, u1 = wilson(2, 30)
    p2, l2, u2 = wilson(9, 30)
    lo = (p2 - p1) - ((p2 - l2) ** 2 + (u1 - p1) ** 2) ** 0.5  # Newcombe by hand
    hi = (p2 - p1) + ((u2 - p2) ** 2 + (p1 - l1) ** 2) ** 0.5
    assert f"+{100 * (p2 - p1):.1f} pts [95% CI +{100 * lo:.1f} pts, +{100 * hi:.1f} pts]" in flat
    assert "Largest identity-group gap (religion)" in flat
    assert "Judge reliability" in flat and "88.0%–93.0% agreement" in flat
    assert "Contents" not in flat  # the table of contents is on page 2


def test_palette_matches_the_grading_scale():
    assert pal.THRESHOLDS == scoring.ABS_THRESHOLDS and pal.GRADES == scoring.GRADES
    for i in range(0, 1001):
        r = i / 1000
        assert pal.grade_of(r) == scoring.grade(r)
        assert pal.rate_color(r) == pal.grade_color(scoring.grade(r))
    assert len(set(pal.GRADE_COLORS.values())) == 5
    assert pal.rate_color(None) == pal.NO_DATA
    assert pal.nice_max([0.03]) == 0.05 and pal.nice_max([0.2]) == 0.25 and pal.nice_max([0.9]) == 1.0
    assert pal.text_on(pal.GRADE_COLORS["very high"]) == "#ffffff"
    assert pal.text_on(pal.GRADE_COLORS["very low"]) == pal.INK


def test_svg_chart_escapes_labels_and_is_drawn_to_scale():
    c = _charts.Chart("t <script>", [_charts.Bar('<img src=x onerror="alert(1)">', 0.25, 0.2, 0.3, 40)], xmax=0.5)
    s = _charts.svg(c, clean=lambda x: x.replace("\u202e", "[U+202E]"))
    assert "<img" not in s and "&lt;img src=x" in s and "<script>" not in s
    w, _, ops = _charts.layout(c)
    rect = next(o for o in ops if o[0] == "rect")
    plot_w = w - c.label_width - 150
    assert rect[3] == pytest.approx(plot_w * 0.5)  # 25% on a 0..50% axis fills half the plot
    assert rect[5] == pal.GRADE_COLORS["high"]
    assert "25.0% [20.0%, 30.0%] n=40" in s


def test_html_sections_filters_and_hostile_labels(run_pdf):
    res, written = run_pdf
    html = written["html"].read_text(encoding="utf-8")
    assert html.count('<details class="section"') >= 6
    assert re.search(r'<details class="section" id="methodology">', html)  # appendix: closed
    assert re.search(r'<details class="section" id="summary" open>', html)
    assert 'class="filters"' in html and 'data-col="area"' in html and 'data-col="group"' in html
    assert '<nav class="index"' in html and 'href="#rule-pages"' in html
    assert "<svg" in html and "Hindu &lt;b&gt;bold&lt;/b&gt;" in html
    for payload in XSS:
        assert payload not in html
    assert len(re.findall(r"<script>", html)) == 1
    assert not re.search(r"\son[a-z]+=\"", html.replace("onerror=&#34;", "").replace('onerror=\\"', ""))


def test_hostile_model_names_and_bidi_in_every_format(tmp_path):
    evil = "evil\u202e<script>window.__pwned=9</script>"
    a = run_result(evil, 0)
    b = run_result("model-b", 1)
    written = render_comparison([a, b], tmp_path, "pdf,html,md")
    html = written["html"].read_text(encoding="utf-8")
    assert "<script>window.__pwned=9" not in html and "\u202e" not in html and "[U+202E]" in html
    md = written["md"].read_text(encoding="utf-8")
    assert "<script>" not in md
    text = "\n".join(p.extract_text() for p in PdfReader(str(written["pdf"])).pages)
    assert "Rules × models" in text and "Appendix: per-rule differences" in text


def test_comparison_has_heatmap_bars_and_appendix_last(tmp_path):
    results = [run_result("model-a", 0), run_result("model-b", 1), run_result("baseline:refuse", 2)]
    written = render_comparison(results, tmp_path, "pdf,html")
    outline = _outline(PdfReader(str(written["pdf"])))
    top = [t for d, t in outline if d == 0]
    assert top[:4] == ["Executive summary", "Contents", "Rules × models", "Risk areas by model"]
    assert top[-1] == "Appendix: per-rule differences"
    html = written["html"].read_text(encoding="utf-8")
    assert re.search(r'<details class="section" id="differences">', html)  # collapsed
    assert 'data-col="significant"' in html
    doc = _document.compare_document(results, __import__("harmscope.reports", fromlist=["x"]).compare_rows(results))
    imgs = [b.text for b in doc.blocks if b.kind == "image"]
    assert "Rules × models" in imgs and "Violation rate per risk area and model" in imgs


def test_audit_worst_groups_first(tmp_path):
    written = render_audit(audit_result(), tmp_path, "pdf,html")
    reader = PdfReader(str(written["pdf"]))
    page1 = re.sub(r"\s+", " ", reader.pages[0].extract_text())
    assert "Groups treated worst" in page1 and "gay · BPSN" in page1
    assert "Most false positives against a group: 'gay', BPSN AUC 0.530" in page1
    top = [t for d, t in _outline(reader) if d == 0]
    assert "Counterfactual identity swaps" in top
    doc = _document.audit_document(audit_result())
    imgs = [b.text for b in doc.blocks if b.kind == "image"]
    assert "BPSN vs BNSP per identity group" in imgs and "Counterfactual gaps" in imgs


def test_extension_point_adds_a_section(tmp_path):
    def extra(result: RunResult) -> list:
        return [_document.Block("heading", "Extra section", level=1, anchor="extra"),
                _document.Block("para", f"pooled n = {result.summary['pooled']['n']}")]

    name = _document.register_section("run", extra)
    try:
        assert _document.register_section("run", extra) == name  # idempotent
        assert _document.SECTIONS.names()[-1] == name and _document.SECTIONS.get(name).meta["kinds"] == ("run",)
        doc = _document.run_document(run_result())
        audit_doc = _document.audit_document(audit_result())
    finally:
        _document.SECTIONS.unregister(name)
    texts = [b.text for b in doc.blocks]
    assert "Extra section" in texts and "pooled n = 500" in texts
    assert texts.index("Extra section") < texts.index("Rules one by one")
    assert "Extra section" not in [b.text for b in audit_doc.blocks]  # registered for run reports only
    assert name not in _document.SECTIONS


def test_sections_registry_kinds_and_order():
    s = _document.SECTIONS
    assert s.names()[:3] == ["benchmarks", "distributional", "distributional-comparison"]
    assert [e.meta["kinds"] for e in list(s)[:3]] == [("run",), ("run",), ("comparison",)]
    with pytest.raises(HarmscopeError, match="unknown report kind slides"):
        _document.register_section("slides", lambda r: [])
    with pytest.raises(HarmscopeError, match="registered twice"):
        _document.register_section("audit", lambda r: [], name="benchmarks")


def _big_result(n_rules: int = 72, n_transforms: int = 8) -> RunResult:
    base = run_result(n_rules=n_rules)
    t = dict(base.tables)
    t["rule_x_transform"] = [{"rule_id": r["rule_id"], "transform": f"t{j}", "k": 3, "n": 20, "rate": 0.15,
                              "lo": 0.05, "hi": 0.36} for r in t["by_rule"] for j in range(n_transforms)]
    t["examples"] = [{**e, "rule_id": r["rule_id"]} for r in t["by_rule"] for e in t["examples"][:3]]
    return base.model_copy(update={"tables": t})


def test_report_generation_time_for_a_catalog_sized_run(tmp_path):
    """72 rules x 8 transforms with examples (the size of a full-catalog run): all four formats well
    inside the 10 s budget perf/reports.py checks on a 10,000-reply run (bound loose for busy CI)."""
    res = _big_result()
    t0 = time.perf_counter()
    written = render_run(res, tmp_path)
    took = time.perf_counter() - t0
    assert set(written) == {"pdf", "html", "json", "md"}
    assert took < 20, f"report generation took {took:.1f} s"


@pytest.mark.parametrize("heading", ["## Report formats", "## Adding a section"])
def test_docs_examples_run(heading, tmp_path):
    """The examples of docs/reports.md register a working format / section."""
    from harmscope.reports.formats import REPORT_FORMATS

    doc = (Path(__file__).parents[2] / "docs" / "reports.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc[doc.index(heading):], re.S).group(1)
    before = (REPORT_FORMATS.names(), _document.SECTIONS.names())
    exec(compile(code, "docs/reports.md", "exec"), {})
    try:
        if heading == "## Report formats":
            written = render_run(run_result(), tmp_path, "headings")
            assert "Rules one by one" in written["headings"].read_text().splitlines()
        else:
            texts = [b.text for b in _document.run_document(run_result()).blocks]
            assert "Sample size" in texts and "pooled n = 500" in texts
    finally:
        for name in set(REPORT_FORMATS.names()) - set(before[0]):
            REPORT_FORMATS.unregister(name)
        for name in set(_document.SECTIONS.names()) - set(before[1]):
            _document.SECTIONS.unregister(name)
    assert (REPORT_FORMATS.names(), _document.SECTIONS.names()) == before
