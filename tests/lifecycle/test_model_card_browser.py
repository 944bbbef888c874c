"""`ml model-card` opened in a real headless Chromium (as tests/test_report_browser.py): no console
error, no exception, no network request; every section and chart laid out. A full-page
screenshot is kept under reports/ci-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import Chromium
from support.common import REPO_ROOT
from support.registry import Reg, add_trained_version

from ml.lifecycle.model_card_render import SECTIONS, write_model_card
from ml.lifecycle.promote import promote
from ml.lifecycle.validate import validate

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "reports" / "ci-artifacts"
LAYOUT = """
({
  sections: Array.from(document.querySelectorAll('[data-section]')).map(s => s.id),
  charts: Array.from(document.querySelectorAll('[data-chart] svg')).map(svg => ({
    key: svg.parentElement.dataset.chart,
    width: Math.round(svg.getBoundingClientRect().width),
    height: Math.round(svg.getBoundingClientRect().height),
    paths: svg.querySelectorAll('path').length,
  })),
  brokenAnchors: Array.from(document.querySelectorAll('nav a'))
    .filter(a => !document.querySelector(a.getAttribute('href'))).length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  images: document.images.length,
})
"""


def test_the_model_card_renders_in_chromium(chromium: Chromium, reg: Reg, tmp_path: Path) -> None:
    # given the card of a trained, validated and promoted version
    version = add_trained_version(reg)
    assert validate(reg.rt).passed
    promote(reg.rt)
    card = write_model_card(reg.rt, version, tmp_path / "model_card.html", log=False)

    # when Chromium opens it from disk
    page = chromium.open(card.path.as_uri(), width=1280, height=900)
    page.wait_for("document.readyState === 'complete'")
    page.browser.pump(0.3)
    screenshot = page.screenshot(ARTIFACTS / "model-card.png")

    # then nothing went wrong and nothing was fetched
    assert page.problems() == []
    # and the 13 sections, the navigation and the three charts are laid out on the page's width
    layout = page.evaluate(LAYOUT)
    assert layout["sections"] == [key for key, _ in SECTIONS]
    assert layout["brokenAnchors"] == 0 and layout["overflow"] <= 0 and layout["images"] == 0
    assert [c["key"] for c in layout["charts"]] == ["pr", "roc", "calibration"]
    assert all(
        c["width"] >= 400 and c["height"] >= 300 and c["paths"] > 10 for c in layout["charts"]
    ), layout
    assert screenshot.stat().st_size > 50_000
