"""`ml model-card`: one self-contained HTML page per model version with the SR 11-7 sections,
logged to the version's run and required by `ml promote`."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.common import REPO_ROOT
from support.registry import Reg, add_trained_version
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle.model_card import CARD_MARKER, CARD_TAG
from ml.lifecycle.model_card_render import SECTIONS, write_model_card
from ml.lifecycle.promote import promote
from ml.lifecycle.validate import DESCRIPTION_MARKER, validate
from ml.platform.feature_docs import feature_labels


class Page(HTMLParser):
    """What the tests look at: sections, tables' rows, charts, and every URL the page names."""

    def __init__(self, html: str):
        super().__init__()
        self.sections: list[str] = []
        self.rows: dict[str, int] = {}
        self.charts: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self._table: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "data-section" in a:
            self.sections.append(a["data-section"])
        if "data-chart" in a:
            self.charts.append(a["data-chart"])
        if tag == "table":
            self._table = a.get("data-table")
        if tag == "tr" and self._table:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1
        for key in ("src", "href", "xlink:href", "action"):
            if a.get(key):
                self.urls.append(a[key])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def champion(reg: Reg) -> str:
    version = add_trained_version(reg)
    assert validate(reg.rt).passed
    promote(reg.rt)
    return version


def test_the_card_has_every_section_and_fetches_nothing(reg: Reg, champion: str, tmp_path: Path):
    # given a trained, validated and promoted version
    # when its card is written
    result = write_model_card(reg.rt, champion, tmp_path / "card.html")

    # then the page holds the 13 SR 11-7 sections in order, and names no URL but its own anchors
    html = result.path.read_text()
    page = Page(html)
    assert page.sections == [key for key, _ in SECTIONS] and result.sections == 13
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert all(url.startswith("#") for url in page.urls), page.urls
    assert "default-src 'none'" in html and "http://" not in html.replace("http://www.w3.org", "")
    # and the evidence is there: features with their seed labels, curves, verdict, approvals
    text = " ".join(page.text)
    labels = feature_labels(REPO_ROOT)
    assert page.rows["features"] == 1 + len(labels)
    assert all(label in text for label in labels.values())
    assert page.charts == ["pr", "roc", "calibration"]
    assert html.count("<svg") == 3
    assert "PASSED" in text and page.rows["rules"] >= 4
    assert page.rows["approvals"] == 2 and "test-user" in text
    assert page.rows["signature"] == 1 + len(labels)
    assert page.rows["stability"] == 1 + len(labels)
    assert page.rows["scenarios"] >= 2  # header + the generated data's one fraud scenario
    assert "scikit-learn" in text and "logistic_regression" in text
    assert "data-note" not in html  # nothing missing


def test_the_card_is_logged_linked_and_tagged(reg: Reg, champion: str, tmp_path: Path):
    import mlflow

    # when the card is written through the CLI
    result = CliRunner().invoke(
        app, ["model-card", "--version", champion, "--output", str(tmp_path / "c.html")]
    )

    # then the run holds the same file, and the version links and tags it
    assert result.exit_code == 0, result.output
    version = reg.version(champion)
    uri = version.tags[CARD_TAG]
    assert uri == f"runs:/{version.run_id}/model_card/model_card.html"
    assert mlflow.artifacts.load_text(uri) == (tmp_path / "c.html").read_text()
    assert version.description.startswith(CARD_MARKER) and uri in version.description
    # and the validation section of the description is still there
    assert DESCRIPTION_MARKER in version.description


def test_ml_promote_refuses_a_version_without_its_card(reg: Reg, tmp_path: Path):
    # given a validated challenger without a card
    version = add_trained_version(reg)
    assert validate(reg.rt).passed

    # when `ml promote` runs, then it refuses in one line and says what to do
    refused = CliRunner().invoke(app, ["promote"])
    assert refused.exit_code == 1
    assert f"v{version} has no model card; run ml model-card --version {version}" in refused.output
    assert reg.alias("champion") is None

    # when the card is written, then the same command promotes it
    carded = CliRunner().invoke(
        app, ["model-card", "--version", version, "--output", str(tmp_path / "c.html")]
    )
    assert carded.exit_code == 0, carded.output
    promoted = CliRunner().invoke(app, ["promote"])
    assert promoted.exit_code == 0, promoted.output
    assert reg.alias("champion") == version
    assert reg.version(version).tags["promotion_blocker"] == "none"


def test_force_promotes_without_a_card_and_records_why(reg: Reg):
    version = add_trained_version(reg)
    assert validate(reg.rt).passed
    result = CliRunner().invoke(app, ["promote", "--force", "--reason", "card tooling down"])
    assert result.exit_code == 0, result.output
    tags = reg.version(version).tags
    assert tags["promotion_forced"] == "true" and "no model card" in tags["promotion_blocker"]


def test_a_card_of_an_unvalidated_version_says_so(reg: Reg, tmp_path: Path):
    # given a version that was never validated nor promoted
    version = add_trained_version(reg)
    # when its card is written without logging
    result = write_model_card(reg.rt, version, tmp_path / "card.html", log=False)
    # then the validation and approvals sections say what is missing, and nothing is tagged
    page = Page(result.path.read_text())
    text = " ".join(page.text)
    assert "has not been validated (ml validate)" in text
    assert "has been champion yet" in text
    assert result.artifact_uri is None and CARD_TAG not in reg.version(version).tags


def test_the_card_shows_the_prequential_evaluation_of_its_configuration(
    reg: Reg, champion: str, tmp_path: Path
):
    from ml.lifecycle.evaluate import prequential

    # given a prequential evaluation of the same candidate and hyperparameters
    result = prequential(
        reg.rt.with_settings(
            training={"prequential_folds": 2, "candidates": ["logistic_regression"]}
        )
    )
    # when the card is written
    card = write_model_card(reg.rt, champion, tmp_path / "card.html", log=False)
    # then its performance section shows that run's fold means and spreads
    html = card.path.read_text()
    page = Page(html)
    assert result.run_id in html and page.rows["prequential"] >= 2
    assert "average_precision_mean" in html and "average_precision_std" in html
