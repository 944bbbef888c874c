"""A small warehouse for `ml report` tests: the report's input tables, written in the shapes the
dbt monitoring models and `ml score` / `ml replay` write (column names and types taken from the
models' OUTPUT_SCHEMA), with a story the charts should show:

* v1 is champion from day 0; from day 10 the world drifts (amounts): tx_amount and the customer
  amount windows drift (PSI up to ~0.6) and v1's average precision falls;
* a drift alert on day 12, v2 is trained (rejected on day 14, then a second attempt validated)
  and promoted on day 20: its own reference makes the PSI low again and precision recovers;
* v3 is trained on day 27 and rejected.

This module has no tests; it is named test_report_* to belong with them.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ml.platform.runtime import Runtime
from ml.platform.settings import FEATURES, Settings
from ml.platform.tables import LATEST_PREDICTIONS, PREDICTIONS
from ml.platform.tables import MODEL_EVENTS as MODEL_EVENTS_TABLE

MONITORING = Path(__file__).resolve().parents[2] / "models" / "marts" / "monitoring"
START = dt.date(2018, 5, 1)
DAYS = 30
DRIFT_DAY, PROMOTION_DAY = 10, 20
MODEL = "fraud_detector"
DRIFTING = {"tx_amount", "customer_id_avg_amount_1day_window", "customer_id_avg_amount_7day_window"}
_PANDAS_TYPES = {
    "bigint": "int64",
    "int": "int32",
    "double": "float64",
    "string": "object",
    "boolean": "bool",
}


def monitoring_schema(model: str) -> dict[str, str]:
    """OUTPUT_SCHEMA of a dbt monitoring Python model (column -> SQL type)."""
    spec = importlib.util.spec_from_file_location(
        f"report_fixture_{model}", MONITORING / f"{model}.py"
    )
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.OUTPUT_SCHEMA)


def _shaped(rows: list[dict], schema: dict[str, str]) -> pd.DataFrame:
    """Rows as a frame with exactly the schema's columns, in order, with matching dtypes."""
    frame = pd.DataFrame(rows)
    for column, sql_type in schema.items():
        if sql_type == "date":
            frame[column] = pd.to_datetime(frame[column]).dt.date
        elif sql_type == "timestamp":
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        else:
            frame[column] = frame[column].astype(_PANDAS_TYPES[sql_type])
    return frame[list(schema)]


def _day(i: int) -> dt.date:
    return START + dt.timedelta(days=int(i))


def _version_on(day: int) -> str:
    return "1" if day < PROMOTION_DAY else "2"


@dataclass(frozen=True)
class ReportWarehouse:
    """What was written (to check the report against)."""

    performance: pd.DataFrame
    drift: pd.DataFrame
    predictions: pd.DataFrame
    features: pd.DataFrame
    events: pd.DataFrame | None


def performance_rows(rng: np.random.Generator, mature_days: int) -> pd.DataFrame:
    rows = []
    for i in range(mature_days):
        version = _version_on(i)
        decay = max(0, i - DRIFT_DAY) * 0.03 if version == "1" else 0.0
        rows.append(
            {
                "tx_date": _day(i),
                "model_name": MODEL,
                "model_version": version,
                "n_transactions": 60,
                "n_frauds": int(rng.integers(2, 8)),
                "n_cards": 55,
                "n_alerts": int(rng.integers(2, 9)),
                "roc_auc": 0.9 - decay / 2,
                "average_precision": float(np.clip(0.72 - decay + rng.normal(0, 0.03), 0, 1)),
                "card_precision_k": 100,
                "card_precision_at_k": float(
                    np.clip(0.05 - decay / 10 + rng.normal(0, 0.004), 0, 1)
                ),
                "precision_at_threshold": 0.6,
                "recall_at_threshold": 0.5,
                "labels_as_of": _day(DAYS - 1),
                "last_scored_at": dt.datetime.combine(_day(i + 1), dt.time(6)),
            }
        )
    return _shaped(rows, monitoring_schema("model_performance_daily"))


def drift_rows(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for i in range(DAYS):
        version = _version_on(i)
        for feature in FEATURES:
            shift = 0.06 * max(0, i - DRIFT_DAY) if feature in DRIFTING and version == "1" else 0.0
            psi = float(abs(rng.normal(0.02, 0.015)) + shift)
            rows.append(
                {
                    "tx_date": _day(i),
                    "model_name": MODEL,
                    "model_version": version,
                    "feature": feature,
                    "n_values": 60,
                    "reference_bins": 10,
                    "psi": psi,
                    "is_drifted": psi >= 0.25,
                    "ks_statistic": min(1.0, psi),
                    "ks_pvalue": max(0.0, 1 - psi * 2),
                    "last_scored_at": dt.datetime.combine(_day(i + 1), dt.time(6)),
                }
            )
    return _shaped(rows, monitoring_schema("feature_drift_daily"))


def scored_rows(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scoring.predictions (architecture.md) and the gold feature table's label columns."""
    per_day = 60
    n = DAYS * per_day
    day = np.repeat(np.arange(DAYS), per_day)
    fraud = rng.random(n) < 0.08
    score = np.clip(np.where(fraud, rng.beta(5, 2, n), rng.beta(1, 8, n)), 0, 1)
    features = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "tx_datetime": pd.to_datetime([_day(d) for d in day])
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "tx_date": [_day(d) for d in day],
            "tx_fraud": fraud.astype("int32"),
            "tx_amount": np.round(rng.gamma(2.0, 40.0, n), 2),
            "tx_fraud_scenario": np.where(fraud, rng.integers(1, 4, n), 0).astype("int32"),
            "customer_id": rng.integers(0, 500, n).astype("int64"),
        }
    )
    predictions = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "score": score,
            "is_alert": score >= 0.5,
            "model_name": MODEL,
            "model_version": [_version_on(d) for d in day],
            "scored_at": pd.to_datetime([_day(d + 1) for d in day]).astype("datetime64[us]"),
        }
    )
    return predictions, features


def event_rows() -> pd.DataFrame:
    """scoring.model_events as `ml replay` writes it."""
    sequence: list[str] = []

    def event(day: int, kind: str, version: str | None, reason: str, **details) -> dict:
        sequence.append(kind)
        return {
            "event_at": dt.datetime.combine(_day(day), dt.time(7))
            + dt.timedelta(minutes=len(sequence)),
            "event_date": _day(day),
            "event": kind,
            "model_name": MODEL,
            "model_version": version,
            "reason": reason,
            "details": json.dumps(details),
            "run_id": f"{day:02d}{kind[:4]}0123456789abcdef",
        }

    drift = {"kind": "card_testing", "start": _day(10).isoformat(), "end": None, "strength": None}
    rows = [
        event(
            -1, "day_completed", "1", "bootstrap", phase="bootstrap", simulation={"drift": [drift]}
        ),
        event(0, "trained", "1", "initial training"),
        event(0, "validated", "1", "first model: minimums met", average_precision=0.71),
        event(0, "promoted", "1", "first champion", champion_version="1"),
        event(
            12, "drift_alert", "1", "PSI >= 0.25 on tx_amount, customer_id_avg_amount_1day_window"
        ),
        event(13, "trained", "2", "retraining after drift alert"),
        event(
            14, "rejected", "2", "average_precision 0.41 < 0.5 (minimum)", average_precision=0.41
        ),
        event(19, "trained", "2", "retraining on 7 more days"),
        event(19, "validated", "2", "better than champion by 0.18 AP", average_precision=0.69),
        event(20, "promoted", "2", "validated challenger", champion_version="2"),
        event(27, "trained", "3", "scheduled weekly retraining"),
        event(27, "rejected", "3", "worse than champion by 0.04 AP (max regression 0.02)"),
        # the daily routine, after each day's decisions
        *(event(d, "scored", "1" if d < 20 else "2", f"day {d} scored") for d in range(28)),
        *(event(d, "day_completed", None, "day completed", phase="day") for d in range(28)),
    ]
    frame = pd.DataFrame(rows)
    frame["event_at"] = frame["event_at"].astype("datetime64[us]")
    frame["event_date"] = pd.to_datetime(frame["event_date"]).dt.date
    return frame


HISTORY_DAYS = 30  # days of data before the scored ones: the feature windows are full on START


def history_rows(rng: np.random.Generator) -> pd.DataFrame:
    """Gold rows of the 30 days before START (never scored): the windows fill on them."""
    n = HISTORY_DAYS * 20
    day = np.repeat(np.arange(-HISTORY_DAYS, 0), 20)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(10**6, 10**6 + n, dtype="int64"),
            "tx_datetime": pd.to_datetime([_day(d) for d in day]),
            "tx_date": [_day(d) for d in day],
            "tx_fraud": np.zeros(n, dtype="int32"),
            "tx_amount": np.round(rng.gamma(2.0, 40.0, n), 2),
            "tx_fraud_scenario": np.zeros(n, dtype="int32"),
            "customer_id": rng.integers(0, 500, n).astype("int64"),
        }
    )


def queue_rows(predictions: pd.DataFrame, features: pd.DataFrame, k: int = 100) -> pd.DataFrame:
    """gold.fraud_alerts: each day's top-k by score, with a few features."""
    joined = predictions.merge(features, on="transaction_id")
    joined = joined.sort_values(
        ["tx_date", "score", "transaction_id"], ascending=[True, False, True]
    )
    joined["alert_rank"] = joined.groupby("tx_date").cumcount() + 1
    queue = joined[joined["alert_rank"] <= k].rename(columns={"tx_date": "alert_date"})
    return queue[
        [
            "alert_date",
            "alert_rank",
            "transaction_id",
            "customer_id",
            "score",
            "is_alert",
            "model_name",
            "model_version",
            "tx_amount",
        ]
    ].reset_index(drop=True)


def kpi_rows(features: pd.DataFrame) -> pd.DataFrame:
    """gold.fraud_kpis_daily's columns the report reads."""
    rows = features.assign(lost=features["tx_amount"] * features["tx_fraud"])
    kpis = rows.groupby("tx_date", as_index=False).agg(
        nb_transactions=("transaction_id", "size"),
        amount=("tx_amount", "sum"),
        nb_frauds=("tx_fraud", "sum"),
        amount_lost=("lost", "sum"),
        nb_compromised_cards=("customer_id", "nunique"),
    )
    kpis["fraud_rate"] = kpis["nb_frauds"] / kpis["nb_transactions"]
    return kpis


def write_report_warehouse(
    settings: Settings, *, events: bool = True, seed: int = 0
) -> ReportWarehouse:
    """Write the report's input tables into the settings' (tmp) warehouse."""
    rng = np.random.default_rng(seed)
    performance = performance_rows(rng, mature_days=DAYS - 7)
    drift = drift_rows(rng)
    predictions, features = scored_rows(rng)
    event_frame = event_rows() if events else None
    with Runtime.build(settings).warehouse() as wh:
        wh.write(performance, "gold.model_performance_daily", mode="overwrite")
        wh.write(drift, "gold.feature_drift_daily", mode="overwrite")
        wh.write(predictions, PREDICTIONS, mode="overwrite")
        # gold.latest_predictions as dbt builds it (a view over the predictions: the latest per transaction)
        wh.con.execute("create schema if not exists gold")
        wh.con.execute(
            f"create or replace view {LATEST_PREDICTIONS} as select * exclude (version_recency) from ("
            "select *, row_number() over (partition by transaction_id order by scored_at desc, "
            f"length(model_version) desc, model_version desc) as version_recency from {PREDICTIONS}) "
            "where version_recency = 1"
        )
        wh.write(
            pd.concat([history_rows(rng), features], ignore_index=True),
            settings.model.feature_table,
            mode="overwrite",
        )
        wh.write(queue_rows(predictions, features), "gold.fraud_alerts", mode="overwrite")
        wh.write(kpi_rows(features), "gold.fraud_kpis_daily", mode="overwrite")
        wh.write(
            pd.DataFrame(
                {
                    "feed": ["transactions", "transactions", "fraud_reports"],
                    "reason": ["absurd_amount", "absurd_amount", "unknown_transaction"],
                }
            ),
            "gold.landing_quarantine",
            mode="overwrite",
        )
        if event_frame is not None:
            wh.write(event_frame, MODEL_EVENTS_TABLE, mode="overwrite")
    return ReportWarehouse(performance, drift, predictions, features, event_frame)


def register_aliases(settings: Settings, source: Path) -> None:
    """An MLflow registry (settings' tracking URI) with v1..v3 and the three aliases; the
    versions' model files are not needed by the report, ``source`` is an empty folder."""
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri
    )
    client.create_registered_model(settings.model.name)
    source.mkdir(parents=True, exist_ok=True)
    for status in ("passed", "passed", "failed"):
        version = client.create_model_version(settings.model.name, source=str(source))
        client.set_model_version_tag(
            settings.model.name, version.version, "validation_status", status
        )
    client.set_registered_model_alias(settings.model.name, "previous_champion", "1")
    client.set_registered_model_alias(settings.model.name, "champion", "2")
    client.set_registered_model_alias(settings.model.name, "challenger", "3")


def sections_of(settings: Settings) -> tuple[dict, dict, Any]:
    """(sections by key, headline value by label, data) of the report of ``settings``."""
    from ml.operations.report.data import load_report_data
    from ml.operations.report.sections import build_sections

    data = load_report_data(Runtime.build(settings))
    sections, headline = build_sections(data, settings)
    return {s.key: s for s in sections}, {label: value for label, value, _ in headline}, data


def tag_versions(settings: Settings, tags: dict[str, dict[str, str]]) -> None:
    """Set tags on registered versions (e.g. the training windows ml train writes)."""
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri
    )
    for version, values in tags.items():
        for key, value in values.items():
            client.set_model_version_tag(settings.model.name, version, key, value)
