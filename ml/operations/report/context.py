"""What the report needs to tell the truth about each day, and the operating tables it shows.

* **Which days count.** A day's figures are only evidence about the model in operation when
  - the feature windows are full: the first ``max(window)`` days of data (30 by default) have
    windows still filling, so their features (and PSI) describe a different distribution;
  - the scoring version did not learn from the day: its training window
    (version tags ``train_start``..``train_end``) is **in-sample**, and every other day up to
    its ``test_end`` is **pre-model** (the model was chosen on, or built after, those labels).
  :func:`day_status` labels each (day, version); the headline uses only ``operated`` days and
  the charts shade the others.
* **Calendar features** (``tx_during_weekend``, ``tx_during_night``) are meant to move with the
  calendar: a training reference of 7 days holds a fixed share of weekend days, so their PSI
  against a single day swings every weekend. They stay in the heatmap but not in the PSI headline.
* **Two alert concepts, one name each**: a *threshold alert* is a transaction scored at or
  above ``model.alert_threshold`` (``scoring.predictions.is_alert``); the *investigation queue*
  is each day's top-k transactions by score (``gold.fraud_alerts``), whatever their score.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from ml.platform.settings import Settings
from ml.platform.tables import ALERTS, KPIS, QUARANTINE

CALENDAR_FEATURES = ("tx_during_weekend", "tx_during_night")
THRESHOLD_ALERTS = "threshold alerts"
QUEUE = "investigation queue"
#: Reason codes come from another part of the project (explanations); the queue keeps a column.
REASONS_COLUMN = "reasons"
#: gold.fraud_alerts' top 3 reasons of an alert (label and signed strength), as the queue shows them.
REASON_COLUMNS = tuple(f"reason_{i}_{part}" for i in (1, 2, 3) for part in ("label", "strength"))
FILLING, IN_SAMPLE, PRE_MODEL, OPERATED = "windows filling", "in-sample", "pre-model", "operated"
QUEUE_FEATURES = (
    "tx_amount",
    "customer_id_nb_tx_1day_window",
    "customer_id_avg_amount_7day_window",
    "terminal_id_risk_7day_window",
    "terminal_id_risk_30day_window",
)
KPI_COLUMNS = (
    "tx_date",
    "nb_transactions",
    "amount",
    "nb_frauds",
    "fraud_rate",
    "amount_lost",
    "nb_compromised_cards",
)
WINDOW_TAGS = ("train_start", "train_end", "test_start", "test_end")


def filling_days(settings: Settings) -> int:
    """Days of data before every feature window is full (the longest window)."""
    features = settings.features
    return max([*features.customer_windows_days, *features.terminal_windows_days])


def day_status(
    days: pd.Series,
    versions: pd.Series,
    data_start: pd.Timestamp | None,
    windows: dict[str, dict[str, pd.Timestamp]],
    filling: int,
) -> pd.Series:
    """Per row: ``windows filling``, ``in-sample``, ``pre-model`` or ``operated``."""
    days = pd.to_datetime(days).dt.normalize()
    status = pd.Series(OPERATED, index=days.index, dtype="object")
    for version, window in windows.items():
        mine = versions.astype(str) == version
        if "test_end" in window:
            status[mine & (days <= window["test_end"])] = PRE_MODEL
        if "train_start" in window and "train_end" in window:
            inside = (days >= window["train_start"]) & (days <= window["train_end"])
            status[mine & inside] = IN_SAMPLE
    if data_start is not None:
        status[days < data_start + pd.Timedelta(days=filling)] = FILLING
    return status


def version_windows(client: Any, name: str) -> dict[str, dict[str, pd.Timestamp]]:
    """Training windows of every registered version, from its tags (``ml train`` sets them)."""
    windows: dict[str, dict[str, pd.Timestamp]] = {}
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        known = {k: pd.Timestamp(tags[k]) for k in WINDOW_TAGS if tags.get(k)}
        if known:
            windows[str(mv.version)] = known
    return windows


def registry_history(client: Any, name: str) -> pd.DataFrame:
    """Champion history from the registry's promotion tags (when no events were recorded)."""
    rows = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        for key, what, reason in (
            ("promoted_at", "promoted", "promotion_reason"),
            ("demoted_at", "replaced", "replaced_by"),
            ("rolled_back_at", "rolled back", "rollback_reason"),
            ("restored_at", "restored", "restore_reason"),
        ):
            if tags.get(key):
                detail = tags.get(reason, "")
                rows.append(
                    {
                        "at": tags[key],
                        "event": what,
                        "version": str(mv.version),
                        "trained on": f"{tags.get('train_start', '?')}..{tags.get('train_end', '?')}",
                        "reason": f"by v{detail}" if key == "demoted_at" else detail,
                    }
                )
    frame = pd.DataFrame(rows, columns=["at", "event", "version", "trained on", "reason"])
    return frame.sort_values("at", kind="stable").reset_index(drop=True)


def read_operating_tables(wh: Any, feature_table: str, notes: dict[str, str]) -> dict[str, Any]:
    """The investigation queue of the last day, the daily KPIs, the quarantine counts and the
    first day of data (None / notes where a table is missing)."""
    out: dict[str, Any] = {"queue": None, "kpis": None, "quarantine": None, "data_start": None}
    if wh.exists(feature_table):
        first = wh.scalar(f"select min(tx_date) from {feature_table}")
        out["data_start"] = pd.Timestamp(first).normalize() if first is not None else None
    if wh.exists(ALERTS):
        columns = list(wh.columns(ALERTS))
        wanted = [
            c
            for c in (
                "alert_date",
                "alert_rank",
                "transaction_id",
                "customer_id",
                "score",
                "is_alert",
                "model_version",
                *QUEUE_FEATURES,
                *REASON_COLUMNS,
            )
            if c in columns
        ]
        last = wh.scalar(f"select max(alert_date) from {ALERTS}")
        if last is not None:
            day = pd.Timestamp(last).date()
            queue = wh.read(ALERTS, wanted, "alert_date", day, day)
            out["queue"] = queue.sort_values("alert_rank") if "alert_rank" in queue else queue
    if out["queue"] is None:
        notes["queue"] = f"Table {ALERTS} is missing or empty; dbt build (after ml score) fills it."
    if wh.exists(KPIS) and set(KPI_COLUMNS) <= set(wh.columns(KPIS)):
        kpis = wh.read(KPIS, list(KPI_COLUMNS))
        out["kpis"] = kpis.sort_values("tx_date") if len(kpis) else None
    if out["kpis"] is None:
        notes["kpis"] = f"Table {KPIS} is missing or empty; dbt build fills it."
    if wh.exists(QUARANTINE) and {"feed", "reason"} <= set(wh.columns(QUARANTINE)):
        rows = wh.read(QUARANTINE, ["feed", "reason"])
        out["quarantine"] = (
            rows.groupby(["feed", "reason"], as_index=False).size().rename(columns={"size": "rows"})
        )
    else:
        notes["quarantine"] = f"Table {QUARANTINE} does not exist yet; dbt build creates it."
    return out


def day_text(value: dt.date | pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")
