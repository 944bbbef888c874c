"""The report's operating sections: the investigation queue, recall per fraud scenario, the
daily KPIs and the landing quarantine (tables); and which days count (context.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ml.operations.report.context import (
    CALENDAR_FEATURES,
    FILLING,
    IN_SAMPLE,
    OPERATED,
    PRE_MODEL,
    QUEUE,
    QUEUE_FEATURES,
    REASONS_COLUMN,
    day_status,
    day_text,
    filling_days,
)
from ml.operations.report.data import ReportData
from ml.platform.settings import Settings
from ml.platform.tables import ALERTS, KPIS, QUARANTINE

KPI_DAYS = 14
CURVE_POINTS = 200


def curve_points(data: ReportData, settings: Settings) -> pd.DataFrame | None:
    """Precision, recall and threshold of the latest scores on matured days that count."""
    from sklearn.metrics import precision_recall_curve

    rows = with_status(data.scored, "tx_date", data, settings)
    mature_until = rows["tx_date"].max() - pd.Timedelta(days=settings.training.delay_days)
    rows = rows[(rows["status"] == OPERATED) & (rows["tx_date"] <= mature_until)]
    if rows["tx_fraud"].nunique() < 2:
        return None
    precision, recall, thresholds = precision_recall_curve(rows["tx_fraud"], rows["score"])
    curve = pd.DataFrame(
        {"precision": precision[:-1], "recall": recall[:-1], "threshold": thresholds}
    )
    step = max(1, len(curve) // CURVE_POINTS)
    return curve.iloc[::step].reset_index(drop=True)


def with_status(
    frame: pd.DataFrame, day_column: str, data: ReportData, settings: Settings
) -> pd.DataFrame:
    """``frame`` with a ``status`` column: which of its (day, version) rows count (context.py)."""
    out = frame.copy()
    out["status"] = day_status(
        out[day_column], out["model_version"], data.data_start, data.windows, filling_days(settings)
    )
    return out


def excluded_spans(
    data: ReportData, settings: Settings, version: str | None
) -> list[tuple[Any, Any, str]]:
    """(first day, last day, label) of the days that do not count, for shading the time charts:
    the filling windows, and the pre-model / in-sample days of ``version`` (the champion)."""
    spans = []
    if data.data_start is not None:
        end = data.data_start + pd.Timedelta(days=filling_days(settings) - 1)
        spans.append((data.data_start, end, FILLING))
    window = data.windows.get(str(version)) if version else None
    if window and "test_end" in window:
        first = data.data_start if data.data_start is not None else window.get("train_start")
        if first is not None and first <= window["test_end"]:
            spans.append((first, window["test_end"], f"v{version} {PRE_MODEL}"))
        if "train_start" in window and "train_end" in window:
            spans.append((window["train_start"], window["train_end"], f"v{version} {IN_SAMPLE}"))
    return spans


def drift_headline_rows(drift: pd.DataFrame, data: ReportData, settings: Settings) -> pd.DataFrame:
    """The drift rows the headline judges: no calendar feature, no day with filling windows."""
    rows = with_status(drift, "tx_date", data, settings)
    return rows[(rows["status"] != FILLING) & ~rows["feature"].isin(CALENDAR_FEATURES)]


def reasons_text(row: dict) -> str:
    """An alert's reasons as gold.fraud_alerts gives them: ``label (+0.41); ...`` ("—" for none)."""
    shown = []
    for i in (1, 2, 3):
        label, strength = row.get(f"reason_{i}_label"), row.get(f"reason_{i}_strength")
        if isinstance(label, str) and label and strength is not None and pd.notna(strength):
            shown.append(f"{label} ({float(strength):+.2f})")
    return "; ".join(shown) or "—"


def queue_table(data: ReportData, settings: Settings) -> tuple[list[str], list[list[str]], str]:
    queue = data.queue
    day = day_text(queue["alert_date"].iloc[0]) if len(queue) and "alert_date" in queue else ""
    features = [c for c in QUEUE_FEATURES if c in queue]
    columns = ["rank", "transaction", "card", "score", "threshold alert", *features, REASONS_COLUMN]
    rows = []
    for r in queue.to_dict("records"):
        rows.append(
            [
                str(r.get("alert_rank", "")),
                str(r.get("transaction_id", "")),
                str(r.get("customer_id", "")),
                f"{float(r['score']):.3f}" if "score" in r else "",
                "yes" if r.get("is_alert") else "no",
                *(f"{float(r[c]):,.2f}" for c in features),
                reasons_text(r),
            ]
        )
    return columns, rows, day


def scenario_table(data: ReportData, settings: Settings) -> list[list[str]]:
    """Recall of threshold alerts per fraud scenario, on the days that count."""
    rows = with_status(data.scenarios, "day", data, settings)
    rows = rows[rows["status"] == OPERATED]
    if rows.empty:
        return []
    per = rows.groupby("scenario", as_index=False).agg(
        frauds=("frauds", "sum"), caught=("caught", "sum")
    )
    return [
        [
            str(int(r.scenario)),
            f"{int(r.frauds):,}",
            f"{int(r.caught):,}",
            f"{r.caught / r.frauds:.1%}" if r.frauds else "—",
        ]
        for r in per.itertuples()
    ]


def kpi_rows(kpis: pd.DataFrame) -> list[list[str]]:
    last = kpis.tail(KPI_DAYS).iloc[::-1]
    return [
        [
            day_text(r.tx_date),
            f"{int(r.nb_transactions):,}",
            f"{float(r.amount):,.0f}",
            f"{int(r.nb_frauds):,}",
            f"{float(r.fraud_rate):.2%}",
            f"{float(r.amount_lost):,.0f}",
            f"{int(r.nb_compromised_cards):,}",
        ]
        for r in last.itertuples()
    ]


def curves_section(data: ReportData, settings: Settings, section: Any) -> Any:
    """PR and threshold curves of the days that count (``section``: the Section class)."""
    from ml.operations.report.figures import curves_figure

    threshold = settings.model.alert_threshold
    curves = section(
        "curves",
        "Precision, recall and the alert threshold",
        "The latest score of every transaction of the matured days that count (no filling, "
        f"in-sample or pre-model day): the precision-recall curve, and the precision and recall "
        f"of threshold alerts at each threshold (dotted: model.alert_threshold = {threshold:g}).",
        source="gold.latest_predictions + gold.transaction_features",
    )
    curve = curve_points(data, settings) if data.scored is not None else None
    if curve is None:
        curves.note = "No matured day that counts holds both frauds and genuine transactions yet."
    else:
        curves.figure = curves_figure(curve, threshold)
    return curves


def operating_sections(data: ReportData, settings: Settings, section: Any) -> list[Any]:
    """The queue, scenario recall, KPI and quarantine sections (``section``: the Section class)."""
    k = settings.model.alert_top_k
    queue = section(
        "queue",
        f"Investigation queue (top {k})",
        f"The {QUEUE}: each day's {k} highest-scored transactions (gold.fraud_alerts), whatever "
        f"their score. Not the same as threshold alerts (score ≥ {settings.model.alert_threshold:g}), "
        "which the queue may hold fewer or more of. Reasons: the alert's three strongest contributions "
        "(reason codes, gold.fraud_alerts), with their signed strength.",
        source=ALERTS,
    )
    if data.queue is not None and len(data.queue):
        queue.table_columns, queue.table_rows, day = queue_table(data, settings)
        queue.title += f", {day}"
    else:
        queue.note = data.notes.get("queue")
    scenarios = section(
        "scenarios",
        "Recall per fraud scenario",
        "Frauds caught by threshold alerts per fraud scenario of the handbook (1: large amounts, "
        "2: compromised terminals, 3: compromised cards, 4: card testing), on the days that count "
        "(labels known so far; in-sample, pre-model and filling days excluded).",
        source="gold.latest_predictions + gold.transaction_features",
    )
    table = scenario_table(data, settings) if data.scenarios is not None else []
    if table:
        scenarios.table_columns = ["scenario", "frauds", "caught", "recall"]
        scenarios.table_rows = table
    else:
        scenarios.note = (
            "No fraud on a day that counts yet (or no scenario column in the gold table)."
        )
    kpis = section(
        "kpis",
        "Daily KPIs",
        f"The last {KPI_DAYS} days of gold.fraud_kpis_daily (frauds by the labels known so far).",
        source=KPIS,
    )
    if data.kpis is not None:
        kpis.table_columns = [
            "day",
            "transactions",
            "amount",
            "frauds",
            "fraud rate",
            "amount lost",
            "compromised cards",
        ]
        kpis.table_rows = kpi_rows(data.kpis)
    else:
        kpis.note = data.notes.get("kpis")
    quarantine = section(
        "quarantine",
        "Landing quarantine",
        "Landed rows the medallion refused, by feed and reason (docs/data-contract.md).",
        source=QUARANTINE,
    )
    if data.quarantine is not None:
        quarantine.table_columns = ["feed", "reason", "rows"]
        quarantine.table_rows = [
            [r.feed, r.reason, f"{int(r.rows):,}"] for r in data.quarantine.itertuples()
        ]
        if not quarantine.table_rows:
            quarantine.note = "Nothing was quarantined."
    else:
        quarantine.note = data.notes.get("quarantine")
    return [queue, scenarios, kpis, quarantine]
