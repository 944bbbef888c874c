"""The report tells the truth: only days that count make the headline (no filling windows, no
in-sample or pre-model day), calendar features are not drift, one name per alert concept, the
champion history without events, and the operating tables (queue, scenario recall, amount
caught, KPIs, quarantine). Fixture world: tests/support/report.py."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from support.report import DAYS, START, register_aliases, sections_of, tag_versions

from ml.platform.runtime import Runtime
from ml.platform.settings import Settings

LAST = START + dt.timedelta(days=DAYS - 1)


def _annotations(section) -> list[str]:
    return [a.text for a in section.figure.layout.annotations]


def test_calendar_features_are_not_counted_as_drift(
    mlflow_settings: Settings, full_warehouse
) -> None:
    # given a last day on which only the weekend flag moved (a weekday against a 7-day reference)
    drift = full_warehouse.drift.copy()
    last = pd.to_datetime(drift["tx_date"]) == pd.to_datetime(drift["tx_date"]).max()
    drift.loc[last, "psi"] = 0.01
    drift.loc[last & (drift["feature"] == "tx_during_weekend"), "psi"] = 0.9
    with Runtime.build(mlflow_settings).warehouse() as wh:
        wh.write(drift, "gold.feature_drift_daily", mode="overwrite")
    # when the report is built
    sections, headline, _ = sections_of(mlflow_settings)
    # then no feature counts as drifted, and the page says why
    assert headline["drifted features"] == "0"
    assert "tx_during_weekend" in sections["drift"].intro and "left out" in sections["drift"].intro


def test_days_whose_windows_are_filling_are_excluded_and_marked(
    mlflow_settings: Settings, full_warehouse
) -> None:
    # given gold starting on the first scored day: its 30-day windows fill for the whole month
    with Runtime.build(mlflow_settings).warehouse() as wh:
        wh.con.execute(f"delete from gold.transaction_features where tx_date < '{START}'")
    # when
    sections, headline, _ = sections_of(mlflow_settings)
    # then no headline figure comes from those days, and the charts shade them
    assert headline["average precision"] == "—"
    assert "excluded: windows filling" in _annotations(sections["performance"])
    assert "fraud amount caught" not in headline


def test_in_sample_and_pre_model_days_are_excluded_and_marked(
    mlflow_settings: Settings, full_warehouse
) -> None:
    # given the champion v2 was trained on days 20..24 and tested up to the last matured day
    matured = pd.to_datetime(full_warehouse.performance["tx_date"]).max().date()
    tag_versions(
        mlflow_settings,
        {
            "2": {
                "train_start": str(START + dt.timedelta(days=20)),
                "train_end": str(START + dt.timedelta(days=21)),
                "test_end": str(matured),
            }
        },
    )
    # when
    sections, headline, _ = sections_of(mlflow_settings)
    # then no v2 day counts yet: the headline is the last day that does (v1's), not an in-sample one
    performance = full_warehouse.performance
    v1 = performance[performance["model_version"] == "1"].sort_values("tx_date")
    assert headline["average precision"] == f"{v1['average_precision'].iloc[-1]:.3f}"
    marks = _annotations(sections["performance"])
    assert "excluded: v2 in-sample" in marks and "excluded: v2 pre-model" in marks


def test_one_name_per_alert_concept(mlflow_settings: Settings, full_warehouse) -> None:
    sections, headline, _ = sections_of(mlflow_settings)
    # threshold alerts (score >= threshold) and the investigation queue (daily top-k) are apart
    assert "threshold alerts" in headline and "alerts" not in headline
    assert sections["alerts"].title == "Threshold alerts per day"
    assert sections["queue"].title == f"Investigation queue (top 100), {LAST}"
    assert "threshold alerts" in sections["queue"].intro.lower()


def test_the_queue_lists_the_last_days_top_k_with_a_reasons_column(
    mlflow_settings: Settings, full_warehouse
) -> None:
    sections, _, _ = sections_of(mlflow_settings)
    queue = sections["queue"]
    assert queue.table_columns[:5] == ["rank", "transaction", "card", "score", "threshold alert"]
    assert queue.table_columns[-1] == "reasons"
    assert [row[0] for row in queue.table_rows] == [str(i) for i in range(1, 61)]  # 60 tx a day
    scores = [float(row[3]) for row in queue.table_rows]
    assert scores == sorted(scores, reverse=True)


def test_recall_per_scenario_and_fraud_amount_caught(
    mlflow_settings: Settings, full_warehouse
) -> None:
    sections, headline, _ = sections_of(mlflow_settings)
    scored = full_warehouse.predictions.merge(full_warehouse.features, on="transaction_id")
    frauds = scored[scored["tx_fraud"] == 1]
    caught = frauds[frauds["is_alert"]]
    # per scenario: frauds, caught, recall (every fixture day counts: windows full, no tags)
    rows = {r[0]: r[1:] for r in sections["scenarios"].table_rows}
    for scenario, group in frauds.groupby("tx_fraud_scenario"):
        hit = int(group["is_alert"].sum())
        assert rows[str(scenario)][:2] == [f"{len(group):,}", f"{hit:,}"]
    share = caught["tx_amount"].sum() / frauds["tx_amount"].sum()
    assert headline["fraud amount caught"] == f"{share:.0%}"


def test_kpis_and_quarantine_are_shown(mlflow_settings: Settings, full_warehouse) -> None:
    sections, _, _ = sections_of(mlflow_settings)
    kpis = sections["kpis"].table_rows
    assert len(kpis) == 14 and kpis[0][0] == str(LAST)
    assert sections["quarantine"].table_rows == [
        ["fraud_reports", "unknown_transaction", "1"],
        ["transactions", "absurd_amount", "2"],
    ]


def test_champion_history_comes_from_the_registry_without_events(
    report_settings: Settings, tmp_path
) -> None:
    # given no scoring.model_events (ml run writes none) but promotions in the registry
    from support.report import write_report_warehouse

    write_report_warehouse(report_settings, events=False)
    register_aliases(report_settings, tmp_path / "model-files")
    tag_versions(
        report_settings,
        {
            "1": {"promoted_at": "2026-01-01T06:00:00Z", "promotion_reason": "first champion"},
            "2": {
                "promoted_at": "2026-01-08T06:00:00Z",
                "promotion_reason": "ml run: validated challenger",
            },
        },
    )
    # when
    sections, _, _ = sections_of(report_settings)
    # then the history lists the promotions, saying where it comes from
    history = sections["events"]
    assert [(r[1], r[2]) for r in history.table_rows] == [("promoted", "1"), ("promoted", "2")]
    assert "MLflow registry" in history.note


def test_pr_and_threshold_curves_use_the_matured_days_that_count(
    mlflow_settings: Settings, full_warehouse
) -> None:
    from sklearn.metrics import precision_recall_curve

    sections, _, data = sections_of(mlflow_settings)
    figure = sections["curves"].figure
    pr, precision, recall = figure.data
    # every fixture day counts (full windows, no training tags); the last 7 are not mature yet
    scored = full_warehouse.predictions.merge(full_warehouse.features, on="transaction_id")
    mature = pd.to_datetime(scored["tx_date"]) <= pd.Timestamp(LAST) - pd.Timedelta(days=7)
    p, r, t = precision_recall_curve(scored.loc[mature, "tx_fraud"], scored.loc[mature, "score"])
    assert list(precision.x) == list(t[:: max(1, len(t) // 200)])
    assert list(pr.y) == list(p[:-1][:: max(1, len(t) // 200)])
    assert [s.x0 for s in figure.layout.shapes] == [0.5]  # the alert threshold


def test_the_queue_shows_each_alerts_reasons_from_the_alert_table():
    from ml.operations.report.operating import reasons_text

    # given an alert of gold.fraud_alerts with two reasons, and one without any
    explained = {
        "reason_1_label": "Transaction amount",
        "reason_1_strength": 1.52,
        "reason_2_label": "Terminal fraud rate",
        "reason_2_strength": -0.1,
        "reason_3_label": None,
        "reason_3_strength": None,
    }
    # then the queue's reasons column shows them with their signed strength, or a dash
    assert reasons_text(explained) == "Transaction amount (+1.52); Terminal fraud rate (-0.10)"
    assert reasons_text({}) == "—"
