"""`ml report` (ml/report.py): what each section shows, missing inputs, the CLI. The browser test
is tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs
from support.report import (
    DAYS,
    START,
    monitoring_schema,
    write_report_warehouse,
)
from typer.testing import CliRunner

from ml.cli import app
from ml.operations.report import write_report
from ml.operations.report.data import DRIFT_COLUMNS, PERFORMANCE_COLUMNS, load_report_data
from ml.operations.report.sections import build_sections
from ml.operations.report.timeline import champion_changes
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings
from ml.platform.tables import LATEST_PREDICTIONS


def _sections(settings: Settings) -> dict:
    data = load_report_data(Runtime.build(settings))
    sections, headline = build_sections(data, settings)
    return {s.key: s for s in sections}, {label: value for label, value, _ in headline}, data


def test_the_report_reads_the_columns_the_monitoring_models_write() -> None:
    # the dbt Python models' declared outputs hold every column the report reads
    assert set(PERFORMANCE_COLUMNS) <= set(monitoring_schema("model_performance_daily"))
    assert set(DRIFT_COLUMNS) <= set(monitoring_schema("feature_drift_daily"))


def test_every_section_shows_its_table(mlflow_settings: Settings, full_warehouse) -> None:
    # when the report is built from a warehouse with every input
    sections, headline, _ = _sections(mlflow_settings)
    # then performance: one line per version and metric, with the table's values
    perf = sections["performance"].figure
    ap = {t.name: t for t in perf.data if t.showlegend}
    assert sorted(ap) == ["v1", "v2"]
    expected = full_warehouse.performance.query("model_version == '2'")[
        "average_precision"
    ].to_numpy()
    np.testing.assert_allclose(np.asarray(ap["v2"].y, dtype=float), expected)
    assert len(perf.data) == 4
    # champion changes are marked where the events put them
    marks = [a.text for a in perf.layout.annotations if "champion" in a.text]
    assert marks == ["v1 champion", "v2 champion"]
    # and the simulated drift's start (recorded by the replay's bootstrap) on every time chart
    drift_day = pd.Timestamp(START) + pd.Timedelta(days=10)
    for name in ("performance", "alerts", "drift", "events"):
        figure = sections[name].figure
        assert [a.text for a in figure.layout.annotations if a.text.startswith("drift")] == [
            "drift: card testing"
        ]
        assert [pd.Timestamp(s.x0) for s in figure.layout.shapes if s.line.dash == "dash"] == [
            drift_day
        ]

    # alerts: per day, the is_alert predictions, and the frauds among them
    alerts = sections["alerts"].figure
    bars = [t for t in alerts.data if t.type == "bar"]
    total = sum(np.asarray(t.y, dtype=int).sum() for t in bars)
    assert total == int(full_warehouse.predictions["is_alert"].sum())
    caught = next(t for t in alerts.data if t.name == "of which frauds")
    joined = full_warehouse.predictions.merge(full_warehouse.features, on="transaction_id")
    assert int(np.sum(caught.y)) == int((joined["is_alert"] & (joined["tx_fraud"] == 1)).sum())

    # drift: feature x day heatmap of the PSI of the version that scored each day
    heatmap = sections["drift"].figure.data[0]
    assert heatmap.type == "heatmap"
    z = pd.DataFrame(heatmap.z, index=list(heatmap.y), columns=pd.to_datetime(list(heatmap.x)))
    assert z.shape == (15, DAYS)
    drift = full_warehouse.drift
    row = drift[(drift["feature"] == "tx_amount") & (drift["tx_date"] == START.replace(day=19))]
    assert z.loc["tx_amount", pd.Timestamp(START.replace(day=19))] == pytest.approx(
        row["psi"].item()
    )
    assert list(heatmap.y)[-1] == "tx_amount"  # first feature at the top

    # events: champion step line and one marker row per event kind, latest events listed
    events = sections["events"].figure
    assert [t.name for t in events.data] == [
        "champion",
        "trained",
        "validated",
        "rejected",
        "promoted",
        "drift_alert",
    ]
    assert list(events.data[0].y) == ["v1", "v2", "v2"]
    assert sections["events"].table_rows[0][:3] == ["2018-05-28", "rejected", "v3"]
    # the daily routine (scored, day_completed) is counted, not charted or listed
    listed = {row[1] for row in sections["events"].table_rows}
    assert listed == {"trained", "validated", "rejected", "promoted", "drift_alert"}
    assert (
        "The loop's 57 routine events (scored, day_completed) are in the table"
        in sections["events"].intro
    )

    # registry: the three aliases
    rows = {r[0]: r for r in sections["registry"].table_rows}
    assert (
        rows["champion"][1] == "v2"
        and rows["challenger"][1] == "v3"
        and rows["challenger"][3] == "failed"
    )
    assert rows["previous_champion"][1] == "v1"

    # headline numbers
    assert headline["champion"] == "v2"
    assert headline["retrainings"] == "4"
    last_perf = full_warehouse.performance.iloc[-1]
    assert headline["average precision"] == f"{last_perf['average_precision']:.3f}"


def test_the_file_is_self_contained(report_settings: Settings, tmp_path: Path) -> None:
    write_report_warehouse(report_settings)
    result = write_report(Runtime.build(report_settings), tmp_path / "out" / "report.html")
    document = result.path.read_text()
    assert result.charts == 5 and result.size_bytes == len(document.encode())
    # plotly.js is inline (its own source mentions URLs in strings; the rest of the page must not)
    assert get_plotlyjs() in document
    text = document.replace(get_plotlyjs(), "")
    # plotly.js inline once, no external script, stylesheet, image or font
    assert text.count("Plotly.newPlot(") == 5
    assert len(re.findall(r"<script>", text)) >= 1 and "<script src" not in text
    assert not re.search(r"<link[^>]+href=", text)
    assert not re.search(r"""(src|href)=["']https?:""", text)
    assert "default-src 'none'" in text  # CSP: the page may fetch nothing
    # no temporary file left behind
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["report.html"]


def test_missing_inputs_become_notes_not_errors(report_settings: Settings, tmp_path: Path) -> None:
    # given only the performance table (no predictions, drift, events) and no MLflow store
    full = write_report_warehouse(report_settings, events=False)
    with Runtime.build(report_settings).warehouse() as wh:
        wh.write(full.drift.head(0), "gold.feature_drift_daily", mode="overwrite")  # empty
        wh.con.execute(f"drop view {LATEST_PREDICTIONS}")
    # when
    result = write_report(Runtime.build(report_settings), tmp_path / "report.html")
    # then one chart and a note for each missing input
    assert result.charts == 1
    notes = dict(result.sections)
    assert notes["Threshold alerts per day"].startswith("No scored transactions")
    assert "gold.feature_drift_daily is empty" in notes["Feature drift (PSI)"]
    assert (
        "scoring.model_events does not exist in target 'local' yet; ml replay creates it"
        in notes["Champion history and retraining decisions"]
    )
    assert notes["Model registry"].startswith("No MLflow registry at")
    assert not (tmp_path / "mlflow.db").exists()  # the report created no store
    text = result.path.read_text()
    assert 'data-note="events"' in text and "ml replay creates it" in text


def test_the_performance_chart_marks_first_days_without_events(report_settings: Settings) -> None:
    write_report_warehouse(report_settings, events=False)
    sections, headline, _ = _sections(report_settings)
    marks = [
        a.text for a in sections["performance"].figure.layout.annotations if a.text.startswith("v")
    ]
    assert marks == ["v2"]
    assert "retrainings" not in headline


def test_champion_changes_follow_promotions_and_rollbacks() -> None:
    events = pd.DataFrame(
        {
            "event_at": pd.to_datetime(
                ["2018-05-01 07:00", "2018-05-10 07:00", "2018-05-12 07:00", "2018-05-12 08:00"]
            ),
            "event_date": pd.to_datetime(
                ["2018-05-01", "2018-05-10", "2018-05-12", "2018-05-12"]
            ).date,
            "event": ["promoted", "promoted", "drift_alert", "rolled_back"],
            "model_version": ["1", "2", "2", "2"],
            "reason": ["", "", "", "AP fell"],
            # a rollback names the restored champion in details
            "details": ["{}", "{}", "{}", json.dumps({"champion_version": "1"})],
        }
    )
    changes = champion_changes(events)
    assert list(changes["champion_version"]) == ["1", "2", "1"]
    assert list(changes["event"]) == ["promoted", "promoted", "rolled_back"]
    assert champion_changes(None).empty


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_writes_the_report_and_prints_its_path(
    report_settings: Settings, tmp_path: Path
) -> None:
    write_report_warehouse(report_settings)
    output = tmp_path / "reports" / "r.html"
    result = CliRunner().invoke(app, ["report", "--output", str(output), "--no-registry"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(output)
    assert "Feature drift (PSI): chart" in result.output
    assert "Model registry: Registry not read (--no-registry)." in result.output
    assert output.is_file() and output.stat().st_size > 1_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "does not exist yet; run `dbt build` first"),
        (["--output", "report.pdf"], "must end with .html"),
    ],
)
def test_cli_user_errors_end_in_one_line(
    report_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if "--output" in args:
        write_report_warehouse(report_settings)
    result = CliRunner().invoke(app, ["report", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "reports").exists()
