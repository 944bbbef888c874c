"""Builders of the shadow comparison tests (tests/operations/test_shadow.py): the generated gold
table, our model's predictions in scoring.predictions and an incumbent's DataRobot CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.lifecycle.data import feature_matrix
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings
from ml.platform.tables import PREDICTIONS

TRAIN_DAYS = 15
OUR_NAME, OUR_VERSION = "fraud_detector", "1"


def fit_both(frame: pd.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """(our scores, the incumbent's scores, the mask of the scored rows): a gradient boosting
    (ours) and a logistic regression (the incumbent), both trained on the same first days."""
    dates = pd.to_datetime(frame["tx_date"])
    days = (dates - dates.min()).dt.days
    train, scored = days < TRAIN_DAYS, days >= TRAIN_DAYS
    x, y = feature_matrix(frame, features), frame["tx_fraud"]
    ours = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(x[train], y[train])
    theirs = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        x[train], y[train]
    )
    return ours.predict_proba(x[scored])[:, 1], theirs.predict_proba(x[scored])[:, 1], scored


def write_our_predictions(
    settings: Settings, ids: np.ndarray, scores: np.ndarray, threshold: float
) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "transaction_id": ids.astype("int64"),
            "score": scores,
            "is_alert": scores >= threshold,
            "model_name": OUR_NAME,
            "model_version": OUR_VERSION,
            "scored_at": pd.Timestamp("2018-06-01 00:00:00"),
        }
    )
    with Runtime.build(settings).warehouse() as wh:
        wh.write(rows, PREDICTIONS, mode="append")
    return rows


def write_datarobot_csv(
    path: Path, ids: np.ndarray, scores: np.ndarray, threshold: float, target: str
) -> Path:
    """The incumbent's scores in DataRobot's batch prediction layout (association id passed
    through)."""
    pd.DataFrame(
        {
            "transaction_id": ids,
            f"{target}_1_PREDICTION": scores,
            f"{target}_0_PREDICTION": 1 - scores,
            f"{target}_PREDICTION": (scores >= threshold).astype(int),
            "THRESHOLD": threshold,
            "POSITIVE_CLASS": 1,
        }
    ).to_csv(path, index=False, float_format="%.17g")
    return path
