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
