"""``ml shadow import``: the incumbent's predictions, side by side with our champion's.

A DataRobot batch-prediction output (CSV, DataRobot's columnar layout: ``<target>_1_PREDICTION``,
optionally ``<target>_PREDICTION`` and ``THRESHOLD``, and the association id passed through)
becomes rows of ``scoring.predictions`` of an *external* model, named ``datarobot:<deployment>``.

* Our rows are never touched: the rows are written with ``insert_new`` on the table's keys
  (transaction_id, model_version), and an external version is namespaced by its model name
  (``datarobot:<deployment>/<version>``), so it never equals a registry version (``ml score``
  skips the transactions that already have a row of the champion's version). Importing the same
  file again adds nothing.
* An external model's name holds a ':' (a registry name never does): the dbt macro
  ``is_external_model`` filters them out of gold.latest_predictions, so gold.fraud_alerts keeps
  ranking only our model's scores, while gold.model_performance_daily measures both (it groups
  by model name and version) and gold.shadow_comparison_daily puts them side by side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime
from ml.platform.tables import FEATURES, PREDICTION_COLUMNS, PREDICTION_KEYS, PREDICTIONS

#: An external model's name is <source><EXTERNAL_MARK><deployment> (macros/is_external_model.sql).
EXTERNAL_MARK = ":"
VERSION_COLUMNS = ("MODEL_VERSION", "model_version")


def external_model_name(deployment: str, source: str = "datarobot") -> str:
    if not deployment or EXTERNAL_MARK in deployment:
        raise ConfigError(f"deployment {deployment!r}: give a non-empty id without ':'")
    return f"{source}{EXTERNAL_MARK}{deployment}"


def is_external_model(name: str) -> bool:
    return EXTERNAL_MARK in name


@dataclass(frozen=True)
class ShadowImport:
    """What ``ml shadow import`` did."""

    model_name: str
    model_version: str
    rows_read: int
    rows_added: int
    alerts: int
    unknown_transactions: int  # ids the feature table does not hold (imported all the same)


def read_datarobot_predictions(
    path: Path | str, *, target: str, id_column: str, threshold: float
) -> tuple[pd.DataFrame, str | None]:
    """(transaction_id, score, is_alert) of a DataRobot prediction CSV, and the model version
    the file names, if any. The label is ``<target>_PREDICTION`` when present, else
    score >= the file's ``THRESHOLD`` (else ``threshold``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no file {path}; give the DataRobot batch prediction output (CSV)")
    frame = pd.read_csv(path)
    positive = f"{target}_1_PREDICTION"
    missing = [c for c in (id_column, positive) if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{path} lacks column(s) {', '.join(missing)}; expected DataRobot's layout with the "
            f"association id passed through (--id-column, --target)"
        )
    ids = pd.to_numeric(frame[id_column], errors="coerce")
    if ids.isna().any() or ids.duplicated().any():
        raise ConfigError(f"{path}: {id_column} must be one whole-number transaction id per row")
    score = frame[positive].to_numpy(dtype="float64")
    if f"{target}_PREDICTION" in frame.columns:
        alert = frame[f"{target}_PREDICTION"].astype(str).isin(["1", "1.0", "True", "true"])
    else:
        cut = frame["THRESHOLD"].to_numpy("float64") if "THRESHOLD" in frame.columns else threshold
        alert = pd.Series(score >= cut)
    version = next(
        (str(frame[c].iloc[0]) for c in VERSION_COLUMNS if c in frame.columns and len(frame)),
        None,
    )
    out = pd.DataFrame(
        {"transaction_id": ids.astype("int64"), "score": score, "is_alert": alert.to_numpy(bool)}
    )
    return out, version


def import_shadow_predictions(
    rt: Runtime,
    path: Path | str,
    *,
    deployment: str,
    version: str | None = None,
    id_column: str = "transaction_id",
    source: str = "datarobot",
) -> ShadowImport:
    """Append the file's predictions to scoring.predictions as the external model
    ``<source>:<deployment>`` (version: ``version``, else the file's MODEL_VERSION column)."""
    name = external_model_name(deployment, source)
    settings = rt.settings
    rows, file_version = read_datarobot_predictions(
        path,
        target=settings.model.label,
        id_column=id_column,
        threshold=settings.model.alert_threshold,
    )
    version = version or file_version
    if not version:
        raise ConfigError(f"{path} names no model version; pass --version")
    model_version = f"{name}/{version}"
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = rows.assign(
        model_name=name,
        model_version=model_version,
        scored_at=np.full(len(rows), np.datetime64(scored_at, "us")),
    )[list(PREDICTION_COLUMNS)]
    with rt.warehouse() as wh:
        known = set()
        if wh.exists(FEATURES):
            known = set(wh.read(FEATURES, ["transaction_id"])["transaction_id"].tolist())
        added = wh.write(rows, PREDICTIONS, mode="insert_new", keys=list(PREDICTION_KEYS))
    return ShadowImport(
        model_name=name,
        model_version=model_version,
        rows_read=len(rows),
        rows_added=int(added),
        alerts=int(rows["is_alert"].sum()),
        unknown_transactions=int((~rows["transaction_id"].isin(known)).sum()),
    )
