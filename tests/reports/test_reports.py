import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import XSS, audit_result, run_result  # noqa: E402

from harmscope.cli import main  # noqa: E402
from harmscope.reports import render_audit, render_comparison, render_run  # noqa: E402
from harmscope.reports._schema import SCHEMAS, load_schema, schema_for, validate  # noqa: E402


def _pdf_text(path: Path) -> tuple[str, int]:
    reader = PdfReader(str(path))
    return "\n".join(p.extract_text() for p in reader.pages), len(reader.pages)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep")
    return render_run(run_result(), out), render_audit(audit_result(), out), out


def test_pdf_has_headings_figures_and_sane_page_count(rendered):
    written, _, _ = rendered
    text, pages = _pdf_text(written["pdf"])
    for heading in ("Executive summary", "Contents", "Risk areas and rules", "By rule", "Identity groups",
                    "Rules one by one", "Methodology", "Judges and their validation figures"):
        assert heading in text, heading
    assert "18.0%" in text  # pooled 90/500
    assert "abc123" in text  # probe set hash on the first page
    assert 4 <= pages <= 30


def test_pdf_text_layer_keeps_every_script(rendered):
    text, _ = _pdf_text(rendered[0]["pdf"])
    squashed = re.sub(r"\s+", "", text)
    for word in ("déjà", "中文字符", "日本語", "हिन्दी"):
        assert word in squashed, word
    # hostile replies are text, shown verbatim
    assert "<script>window.__pwned" in text


def test_html_escapes_hostile_text(rendered):
    html = rendered[0]["html"].read_text(encoding="utf-8")
    for payload in XSS:
        assert payload not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert len(re.findall(r"<script>", html)) == 1  # only our sorting script
    assert "Content-Security-Policy" in html
    assert "http://" not in html and "https://" not in html  # self-contained


def test_json_validates_against_committed_schema(rendered):
    data = json.loads(rendered[0]["json"].read_text(encoding="utf-8"))
    validate("run-result", data)
    validate("audit-result", json.loads(rendered[1]["json"].read_text(encoding="utf-8")))
    with pytest.raises(Exception):  # noqa: B017
        validate("run-result", {"manifest": {}})


def test_committed_schemas_match_types():
    for name in SCHEMAS:
        assert load_schema(name) == json.loads(json.dumps(schema_for(name))), f"regenerate {name}"


def test_markdown_summary(rendered):
    md = rendered[0]["md"].read_text(encoding="utf-8")
    assert md.startswith("## harmscope benchmark report")
    assert "Pooled violation rate" in md and "<script>" not in md


def test_audit_pdf(rendered):
    text, pages = _pdf_text(rendered[1]["pdf"])
    assert "Unintended bias metrics" in text and "Groups treated worst" in text
    assert "Counterfactual identity swaps" in text and pages >= 3


def test_comparison_flags_differences(tmp_path):
    a, b = run_result("model-a", 0), run_result("model-b", 1)
    written = render_comparison([a, b], tmp_path, "json,pdf")
    data = json.loads(written["json"].read_text())
    assert len(data["differences"]) == 12
    row = data["differences"][0]
    ra = a.tables["by_rule"][0]
    rb = b.tables["by_rule"][0]
    assert row["diff"] == pytest.approx(rb["k"] / rb["n"] - ra["k"] / ra["n"])
    assert row["diff_lo"] <= row["diff"] <= row["diff_hi"]
    text, _ = _pdf_text(written["pdf"])
    assert "Rules × models" in text and "model-b" in text


def test_cli_report_and_errors(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text(run_result().model_dump_json(), encoding="utf-8")
    res = CliRunner().invoke(main, ["report", str(run_dir), "--format", "md,json", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "report.md").is_file()
    bad = CliRunner().invoke(main, ["report", str(run_dir), "--format", "docx", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "unknown report format docx" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    miss = CliRunner().invoke(main, ["report", str(empty), "--out", str(tmp_path / "o")])
    assert miss.exit_code == 2 and "no result.json" in miss.output
    (empty / "result.json").write_text("{not json", encoding="utf-8")
    broken = CliRunner().invoke(main, ["report", str(empty), "--out", str(tmp_path / "o")])
    assert broken.exit_code == 2 and "result.json" in broken.output


def test_report_formats_come_from_the_registry(tmp_path):
    from harmscope.errors import HarmscopeError
    from harmscope.reports import REPORT_FORMATS, render_agreement
    from harmscope.reports.formats import ReportFormat

    assert REPORT_FORMATS.names() == ["pdf", "html", "json", "md"]  # registration order = default order
    assert [e.name for e in REPORT_FORMATS if e.meta["agreement"]] == ["pdf", "html", "json"]
    helptext = CliRunner().invoke(main, ["report", "--help"]).output
    assert "pdf, html, json, md" in " ".join(helptext.split())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text(run_result().model_dump_json(), encoding="utf-8")

    class Text(ReportFormat):
        """Plain text: the headings of the document."""

        name = "txt"
        suffix = "txt"

        def write(self, job, path):
            path.write_text("\n".join(b.text for b in job.document().blocks if b.kind == "heading"), encoding="utf-8")

    REPORT_FORMATS.register(Text)
    try:  # a registered format is reachable from the CLI with no other change
        res = CliRunner().invoke(main, ["report", str(run_dir), "--format", "txt", "--out", str(tmp_path / "o")])
        assert res.exit_code == 0, res.output
        assert "Rules one by one" in (tmp_path / "o" / "report.txt").read_text(encoding="utf-8")
        bad = CliRunner().invoke(main, ["report", str(run_dir), "--format", "docx", "--out", str(tmp_path / "o")])
        assert "choose from pdf, html, json, md, txt" in bad.output
    finally:
        REPORT_FORMATS.unregister("txt")
    assert "txt" not in REPORT_FORMATS
    # judge-agreement reports use the same registry; Markdown cannot write one
    with pytest.raises(HarmscopeError, match="unknown judge-agreement report format md; choose from pdf, html, json"):
        render_agreement({}, tmp_path / "agr", "json,md")
    assert not (tmp_path / "agr").exists()  # nothing written before the check
