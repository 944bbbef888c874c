"""The report's inputs, read once (read-only); a missing or empty table becomes a note."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.operations.events import EVENT_COLUMNS
from ml.operations.report.context import read_operating_tables, registry_history, version_windows
from ml.platform import tables
from ml.platform.runtime import Runtime
from ml.platform.tables import DRIFT, LATEST_PREDICTIONS, MODEL_EVENTS, PERFORMANCE

#: Columns the report reads from each table (a table without them is reported, not used).
PERFORMANCE_COLUMNS = [
    "tx_date",
    "model_name",
    "model_version",
    "n_transactions",
    "n_frauds",
    "n_alerts",
    "average_precision",
    "card_precision_k",
    "card_precision_at_k",
]
DRIFT_COLUMNS = [
    "tx_date",
    "model_name",
    "model_version",
    "feature",
    "n_values",
    "psi",
    "is_drifted",
]
PREDICTION_COLUMNS = list(tables.PREDICTION_COLUMNS)
FEATURE_COLUMNS = ["transaction_id", "tx_date", "tx_fraud"]
#: Read when present: the amount caught, and recall per fraud scenario.
OPTIONAL_FEATURE_COLUMNS = ["tx_amount", "tx_fraud_scenario"]

#: The columns of scoring.model_events the report shows (all but the key).
READ_EVENT_COLUMNS = [c for c in EVENT_COLUMNS if c != "event_id"]
#: The registry aliases the report lists.
ALIASES = ("champion", "challenger", "previous_champion")


@dataclass
class ReportData:
    """What the report read (None: the table is missing or unusable; see ``notes``)."""

    target: str
    location: str
    performance: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None
    alerts_source: str = ""
    drift: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    registry: list[dict[str, str]] | None = None
    registry_model: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    # context.py: what makes a day count, and the operating tables
    data_start: pd.Timestamp | None = None
    windows: dict[str, dict[str, pd.Timestamp]] = field(default_factory=dict)
    history: pd.DataFrame | None = None  # champion history from the registry
    scenarios: pd.DataFrame | None = None  # day, model_version, scenario, frauds, caught
    scored: pd.DataFrame | None = None  # tx_date, model_version, score, tx_fraud (PR curves)
    queue: pd.DataFrame | None = None
    kpis: pd.DataFrame | None = None
    quarantine: pd.DataFrame | None = None


def load_report_data(rt: Runtime, include_registry: bool = True) -> ReportData:
    """Read every input of the report (read-only); missing tables become notes."""
    with rt.warehouse(read_only=True) as wh:
        data = ReportData(target=wh.target.name, location=wh.location(PERFORMANCE))
        data.performance = _read(
            wh,
            PERFORMANCE,
            PERFORMANCE_COLUMNS,
            data.notes,
            "performance",
            "dbt build (after ml score)",
        )
        data.drift = _read(
            wh, DRIFT, DRIFT_COLUMNS, data.notes, "drift", "dbt build (after ml score)"
        )
        data.events = _read(wh, MODEL_EVENTS, READ_EVENT_COLUMNS, data.notes, "events", "ml replay")
        data.alerts, data.alerts_source, data.scenarios, data.scored = _read_alerts(
            wh, rt.settings.model.feature_table, data.notes
        )
        operating = read_operating_tables(wh, rt.settings.model.feature_table, data.notes)
        data.queue, data.kpis, data.quarantine = (
            operating["queue"],
            operating["kpis"],
            operating["quarantine"],
        )
        data.data_start = operating["data_start"]
    if include_registry:
        data.registry, data.registry_model, note = _read_registry(rt, data)
        if note:
            data.notes["registry"] = note
    else:
        data.notes["registry"] = "Registry not read (--no-registry)."
    return data


def _read(
    wh: Any, relation: str, columns: list[str], notes: dict[str, str], key: str, command: str
) -> pd.DataFrame | None:
    if not wh.exists(relation):
        notes[key] = (
            f"Table {relation} does not exist in target '{wh.target.name}' yet; {command} creates it."
        )
        return None
    missing = [c for c in columns if c not in wh.columns(relation)]
    if missing:
        notes[key] = (
            f"Table {relation} has no column(s) {', '.join(missing)}; rebuild it with the current code."
        )
        return None
    frame = wh.read(relation, columns)
    if frame.empty:
        notes[key] = f"Table {relation} is empty; {command} fills it."
        return None
    return frame


def _read_alerts(
    wh: Any, features: str, notes: dict[str, str]
) -> tuple[pd.DataFrame | None, str, pd.DataFrame | None, pd.DataFrame | None]:
    """Threshold alerts per (transaction day, model version), the frauds among them (labels so
    far) and their amounts; and the same per fraud scenario.

    A transaction scored by several versions counts once, with its latest score
    (gold.latest_predictions, the rule gold.fraud_alerts ranks by). gold.fraud_alerts is the
    investigation queue (top-k), another concept: it is not used for threshold alerts.
    """
    latest = LATEST_PREDICTIONS
    if wh.exists(latest) and wh.exists(features):
        available = wh.columns(features)
        missing = [c for c in PREDICTION_COLUMNS if c not in wh.columns(latest)]
        missing += [c for c in FEATURE_COLUMNS if c not in available]
        if not missing:
            scored = wh.read(latest, PREDICTION_COLUMNS)
            if not scored.empty:
                optional = [c for c in OPTIONAL_FEATURE_COLUMNS if c in available]
                labels = wh.read(features, FEATURE_COLUMNS + optional)
                joined = scored.merge(labels, on="transaction_id", how="inner")
                joined["is_alert"] = joined["is_alert"].astype(bool)
                joined["caught"] = joined["is_alert"] & (joined["tx_fraud"] == 1)
                amount = joined.get("tx_amount", np.nan)
                joined["fraud_amount"] = np.where(joined["tx_fraud"] == 1, amount, 0.0)
                joined["caught_amount"] = np.where(joined["caught"], amount, 0.0)
                keys = ["tx_date", "model_name", "model_version"]
                daily = (
                    joined.groupby(keys, as_index=False)
                    .agg(
                        scored=("transaction_id", "size"),
                        alerts=("is_alert", "sum"),
                        caught=("caught", "sum"),
                        frauds=("tx_fraud", "sum"),
                        fraud_amount=("fraud_amount", "sum"),
                        caught_amount=("caught_amount", "sum"),
                    )
                    .rename(columns={"tx_date": "day"})
                )
                scenarios = None
                if "tx_fraud_scenario" in joined:
                    frauds = joined.loc[joined["tx_fraud"] == 1]
                    scenarios = (
                        frauds.groupby([*keys, "tx_fraud_scenario"], as_index=False)
                        .agg(frauds=("tx_fraud", "sum"), caught=("caught", "sum"))
                        .rename(columns={"tx_date": "day", "tx_fraud_scenario": "scenario"})
                    )
                    scenarios = _as_day(scenarios, "day")
                scored_rows = _as_day(
                    joined[["tx_date", "model_version", "score", "tx_fraud"]].copy(), "tx_date"
                )
                return _as_day(daily, "day"), f"{latest} + {features}", scenarios, scored_rows
    notes["alerts"] = (
        f"No scored transactions: {latest} is missing or empty in target "
        f"'{wh.target.name}'; ml score (then dbt build) fills it."
    )
    return None, "", None, None


def _read_registry(
    rt: Runtime, data: ReportData | None = None
) -> tuple[list[dict[str, str]] | None, str, str | None]:
    """(rows per alias, model name, note): the registry's aliases, without creating anything;
    also the versions' training windows and the champion history into ``data``."""
    locations = rt.mlflow
    uri = locations.registry_uri or locations.tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            return (
                None,
                locations.model_name,
                f"No MLflow registry at {path} yet; ml train creates it.",
            )
        uri = f"sqlite:///{path}"
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(
            tracking_uri=uri if locations.registry_uri is None else locations.tracking_uri,
            registry_uri=uri,
        )
        try:
            model = client.get_registered_model(locations.model_name)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return (
                    None,
                    locations.model_name,
                    f"Model {locations.model_name} is not registered yet; ml train registers it.",
                )
            raise
        if data is not None:
            data.windows = version_windows(client, locations.model_name)
            data.history = registry_history(client, locations.model_name)
        rows = []
        for alias in ALIASES:
            version = (model.aliases or {}).get(alias)
            if version is None:
                rows.append(
                    {"alias": alias, "version": "—", "created": "", "validation": "", "run_id": ""}
                )
                continue
            mv = client.get_model_version(locations.model_name, str(version))
            created = (
                dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC)
                if mv.creation_timestamp
                else None
            )
            rows.append(
                {
                    "alias": alias,
                    "version": str(version),
                    "created": created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
                    "validation": (mv.tags or {}).get("validation_status", ""),
                    "run_id": mv.run_id or "",
                }
            )
        return rows, locations.model_name, None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return None, locations.model_name, f"MLflow registry not reachable ({first})."


def _as_day(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame[column] = pd.to_datetime(frame[column]).dt.normalize()
    return frame


def _version_key(version: Any) -> tuple[int, int, str]:
    text = str(version)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def _sorted_versions(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna()}, key=_version_key)


def _label(model_name: str, version: str, several_names: bool) -> str:
    return f"{model_name} v{version}" if several_names else f"v{version}"
