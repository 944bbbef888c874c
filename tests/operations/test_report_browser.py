"""`ml report` opened in a real headless Chromium (Debian's package; `make browser` installs it):
no console error, no exception, no network request, and every chart drawn. A full-page
screenshot is kept under reports/ci-artifacts/ as a CI artefact."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import Chromium
from support.common import REPO_ROOT, settings_for
from support.report import register_aliases, write_report_warehouse

from ml.operations.report import write_report
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "reports" / "ci-artifacts"
# Per chart: the SVG elements plotly draws for its traces.
CHART_TRACES = """
Array.from(document.querySelectorAll('[data-chart]')).map(chart => ({
  key: chart.dataset.chart,
  plots: chart.querySelectorAll('.js-plotly-plot').length,
  width: Math.round(chart.querySelector('.main-svg')?.getBoundingClientRect().width || 0),
  lines: chart.querySelectorAll('.scatterlayer .trace path.js-line').length,
  points: chart.querySelectorAll('.scatterlayer .trace .point').length,
  bars: chart.querySelectorAll('.barlayer .trace .point path').length,
  heatmaps: chart.querySelectorAll('.heatmaplayer image').length,
}))
"""
ALL_DRAWN = (
    "document.querySelectorAll('[data-chart]').length > 0 && "
    "Array.from(document.querySelectorAll('[data-chart] .js-plotly-plot'))"
    ".every(p => p._fullLayout && p.querySelector('.main-svg'))"
)


def test_the_full_report_renders_in_chromium(
    chromium: Chromium, mlflow_settings: Settings, tmp_path: Path
) -> None:
    # given a report built from a small warehouse with every input, and a registry
    write_report_warehouse(mlflow_settings)
    register_aliases(mlflow_settings, tmp_path / "model-files")
    report = write_report(Runtime.build(mlflow_settings), tmp_path / "fraudops-report.html")
    # when Chromium opens it from disk
    page = chromium.open(report.path.as_uri(), width=1280, height=900)
    page.wait_for(ALL_DRAWN, timeout=60)
    screenshot = page.screenshot(ARTIFACTS / "fraudops-report.png")
    # then nothing went wrong and nothing was fetched
    assert page.problems() == []
    # and the four charts are drawn with their traces, as wide as the page allows
    charts = {c["key"]: c for c in page.evaluate(CHART_TRACES)}
    assert list(charts) == ["performance", "alerts", "drift", "curves", "events"]
    assert all(c["plots"] == 1 and c["width"] > 1000 for c in charts.values()), charts
    assert charts["performance"]["lines"] == 4  # 2 versions x (AP, CP@100)
    assert charts["performance"]["points"] > 40
    assert charts["alerts"]["bars"] == 30  # one bar per day (one version a day)
    assert charts["alerts"]["lines"] == 2  # frauds among alerts, all frauds
    assert charts["drift"]["heatmaps"] == 1
    assert charts["curves"]["lines"] == 3  # precision-recall; precision and recall by threshold
    assert charts["events"]["points"] == 11 + 3  # 11 events, champion step line's 3 points
    # and the tables and headline cards are there
    assert page.evaluate("document.querySelectorAll('[data-table=registry] tbody tr').length") == 3
    # champion, AP, CP@k, threshold alerts, fraud amount caught, drifted features, retrainings
    assert page.evaluate("document.querySelectorAll('#headline .card').length") == 7
    assert page.evaluate("document.querySelectorAll('[data-note]').length") == 0
    assert screenshot.stat().st_size > 50_000


def test_a_report_without_model_events_says_so(chromium: Chromium, warehouse_env: Path) -> None:
    # given no scoring.model_events table (ml replay has not run) and no registry
    settings = settings_for(warehouse_env)
    write_report_warehouse(settings, events=False)
    report = write_report(
        Runtime.build(settings), warehouse_env / "no-events.html", include_registry=False
    )
    page = chromium.open(report.path.as_uri())
    page.wait_for(ALL_DRAWN, timeout=60)
    page.screenshot(ARTIFACTS / "fraudops-report-no-events.png")
    assert page.problems() == []
    # then three charts, and the events section explains what is missing
    assert [c["key"] for c in page.evaluate(CHART_TRACES)] == [
        "performance",
        "alerts",
        "drift",
        "curves",
    ]
    note = page.evaluate("document.querySelector('[data-note=events]').innerText")
    assert "scoring.model_events does not exist" in note and "ml replay" in note


def test_the_browser_check_catches_errors_and_requests(chromium: Chromium, tmp_path: Path) -> None:
    # given a page with a console error, an uncaught exception and a request off the machine's
    # disk (to a closed loopback port: nothing leaves the machine)
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!DOCTYPE html><html><body><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); setTimeout(() => { throw new Error('bang'); }, 0);</script>"
        "</body></html>"
    )
    # when opened
    page = chromium.open(page_file.as_uri())
    page.wait_for("document.readyState === 'complete'")
    page.browser.pump(0.5)
    # then each problem is reported
    problems = "\n".join(page.problems())
    assert "console error: boom" in problems
    assert "exception: Error: bang" in problems or "exception: Uncaught Error: bang" in problems
    assert "network request: http://127.0.0.1:9/x.png" in problems
