"""Open a report with hostile replies in real headless Chromium: no script runs, tables sort."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import run_result  # noqa: E402

from harmscope.reports import render_run  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (make browser)")]

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


def test_hostile_report_in_chromium(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    html = render_run(run_result(), tmp_path, "html")["html"]
    shots = Path(__file__).resolve().parents[2] / "out" / "test-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True)
        page = ctx.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned === undefined")
        assert dialogs == []
        # the hostile text is visible as text
        assert "<script>window.__pwned = 1</script>" in page.inner_text("body")
        # sort the by-rule table by its 'rate' column, both directions
        table = page.locator("table.sortable").filter(has_text="rule-00").first
        headers = table.locator("th")
        names = [headers.nth(i).inner_text().strip() for i in range(headers.count())]
        col = names.index("rate")
        headers.nth(col).click()
        vals = [float(v) for v in table.locator(f"tbody tr td:nth-child({col + 1})").evaluate_all(
            "els => els.map(e => e.getAttribute('data-v'))")]
        assert vals == sorted(vals)
        headers.nth(col).click()
        vals = [float(v) for v in table.locator(f"tbody tr td:nth-child({col + 1})").evaluate_all(
            "els => els.map(e => e.getAttribute('data-v'))")]
        assert vals == sorted(vals, reverse=True)
        page.screenshot(path=str(shots / "report-html.png"), full_page=False)
        ctx.close()
    assert (shots / "report-html.png").stat().st_size > 10_000


def test_sections_collapse_and_tables_filter_in_chromium(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from fixtures import run_result as make

    from harmscope.reports import render_comparison

    html = render_comparison([make("model-a", 0), make("model-b", 1), make("model-c", 2)], tmp_path, "html")["html"]
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        summary = page.locator("details#summary")
        assert summary.evaluate("d => d.open")
        assert page.locator("details#summary svg.chart").first.is_visible()
        summary.locator("summary").first.click()  # collapse
        assert not summary.evaluate("d => d.open")
        assert not page.locator("details#summary svg.chart").first.is_visible()
        # the appendix starts closed; the index link opens it
        appendix = page.locator("details#differences")
        assert not appendix.evaluate("d => d.open")
        page.locator('nav.index a[href="#differences"]').click()
        page.wait_for_function("document.getElementById('differences').open")
        appendix.locator("details.table > summary").click()  # the long table is collapsed too
        table = appendix.locator("table.sortable")
        rows = table.locator("tbody tr")
        total = rows.count()
        assert total == 24  # 12 rules x 2 models against the reference
        sig = appendix.locator('select[data-col="significant"]')
        sig.select_option("yes")
        visible = [r for r in range(total) if rows.nth(r).is_visible()]
        cells = table.locator("tbody tr:not([hidden]) td:last-child").all_inner_texts()
        assert cells and set(cells) == {"yes"} and len(visible) == len(cells) < total
        assert appendix.locator(".filters .count").inner_text() == f"{len(cells)} of {total} rows"
        sig.select_option("")
        group = appendix.locator('select[data-col="group"]')
        group.select_option("privacy")
        groups = table.locator("tbody tr:not([hidden]) td:nth-child(3)").all_inner_texts()
        assert groups and set(groups) == {"privacy"}
        page.locator('button[data-all="close"]').click()
        assert page.evaluate("Array.from(document.querySelectorAll('details.section')).every(d => !d.open)")
        assert errors == [], errors  # no CSP violations or script errors
        ctx.close()
