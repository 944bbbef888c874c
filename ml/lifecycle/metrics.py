"""Fraud-detection metrics (Fraud Detection Handbook, chapter 4).

* threshold-free: ROC AUC and average precision (``sklearn.metrics``);
* Card Precision@k (:func:`card_precision_at_k`): what the investigators see — each day, the
  ``k`` cards with the highest score; the share of them that are really compromised;
* at the alert threshold (:func:`threshold_metrics`): precision, recall, alerts per day and the
  fraud amount caught.

:func:`compute_metrics` returns all of them as one flat ``{name: float}`` dict with stable names
(MLflow metric keys, registry tags and validation thresholds use them):

``roc_auc``, ``average_precision``, ``card_precision_at_<k>``, ``precision_at_threshold``,
``recall_at_threshold``, ``alerts_per_day``, ``fraud_amount_caught``,
``fraud_amount_caught_share``, ``transactions``, ``frauds``, ``fraud_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from ml.platform.tables import AMOUNT_COLUMN, CUSTOMER_COLUMN, DATE_COLUMN

LABEL_COLUMN = "tx_fraud"

#: The metrics computed by :func:`compute_metrics` for ``top_k=100`` (in display order).
METRIC_NAMES: tuple[str, ...] = (
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "precision_at_threshold",
    "recall_at_threshold",
    "alerts_per_day",
    "fraud_amount_caught",
    "fraud_amount_caught_share",
    "transactions",
    "frauds",
    "fraud_rate",
)


def card_precision_key(k: int) -> str:
    """Metric name of Card Precision@k, e.g. ``card_precision_at_100``."""
    return f"card_precision_at_{k}"


@dataclass(frozen=True)
class CardPrecision:
    """Card Precision@k: the mean over days and the per-day values."""

    k: int
    mean: float
    per_day: pd.Series  # index: day, value: precision among that day's top-k cards
    compromised_cards_per_day: pd.Series  # fraudulent cards left in each day's candidates


def card_precision_at_k(
    frame: pd.DataFrame,
    scores: Sequence[float] | np.ndarray,
    k: int = 100,
    *,
    label_column: str = LABEL_COLUMN,
    customer_column: str = CUSTOMER_COLUMN,
    date_column: str = DATE_COLUMN,
    remove_detected: bool = True,
) -> CardPrecision:
    """The handbook's Card Precision@k.

    For each day (ascending): each card gets its highest score and its highest label of the day;
    cards already detected (a fraudulent card in the top ``k`` of an earlier day) are removed;
    the ``k`` cards with the highest score are the alerts; precision = fraudulent cards among
    them / ``k`` (also when fewer than ``k`` cards were active). The result is the mean over days.
    Ties in score are broken by card id, so the metric is deterministic.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    scores = np.asarray(scores, dtype="float64")
    if len(scores) != len(frame):
        raise ValueError(f"{len(scores)} scores for {len(frame)} rows")
    data = pd.DataFrame(
        {
            "day": frame[date_column].to_numpy(),
            "card": frame[customer_column].to_numpy(),
            "label": frame[label_column].to_numpy(),
            "score": scores,
        }
    )
    detected: set = set()
    per_day: dict = {}
    compromised: dict = {}
    for day, rows in data.groupby("day", sort=True):
        rows = rows.loc[~rows["card"].isin(detected)]
        cards = rows.groupby("card", sort=True).agg(score=("score", "max"), label=("label", "max"))
        compromised[day] = int(cards["label"].sum())
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        hits = top.index[top["label"] == 1]
        per_day[day] = len(hits) / k
        if remove_detected:
            detected.update(hits)
    per_day_series = pd.Series(per_day, dtype="float64", name=card_precision_key(k))
    mean = float(per_day_series.mean()) if len(per_day_series) else float("nan")
    return CardPrecision(
        k=k,
        mean=mean,
        per_day=per_day_series,
        compromised_cards_per_day=pd.Series(compromised, dtype="int64"),
    )


def threshold_metrics(
    frame: pd.DataFrame,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
    *,
    label_column: str = LABEL_COLUMN,
    amount_column: str = AMOUNT_COLUMN,
    date_column: str = DATE_COLUMN,
) -> dict[str, float]:
    """Alerts are transactions with ``score >= threshold``: precision and recall of the alerts,
    alerts per day (over the days present in ``frame``), fraud amount caught (sum and share)."""
    scores = np.asarray(scores, dtype="float64")
    labels = frame[label_column].to_numpy().astype("int64")
    alerts = scores >= threshold
    amounts = frame[amount_column].to_numpy(dtype="float64")
    fraud_amount = float(amounts[labels == 1].sum())
    caught = float(amounts[(labels == 1) & alerts].sum())
    days = frame[date_column].nunique()
    return {
        "precision_at_threshold": float(precision_score(labels, alerts, zero_division=0.0)),
        "recall_at_threshold": float(recall_score(labels, alerts, zero_division=0.0)),
        "alerts_per_day": float(alerts.sum() / days) if days else float("nan"),
        "fraud_amount_caught": caught,
        "fraud_amount_caught_share": caught / fraud_amount if fraud_amount else float("nan"),
    }


def ranking_metrics(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """ROC AUC and average precision; NaN when ``labels`` hold a single class."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return {"roc_auc": float("nan"), "average_precision": float("nan")}
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
    }


def compute_metrics(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray | None,
    frame: pd.DataFrame,
    *,
    threshold: float = 0.5,
    top_k: int = 100,
    label_column: str = LABEL_COLUMN,
) -> dict[str, float]:
    """All metrics for fraud ``scores`` of the rows of ``frame``.

    ``frame`` needs ``tx_date``, ``customer_id`` and ``tx_amount``; ``labels`` default to
    ``frame[label_column]``. Names: see the module docstring (``card_precision_at_<top_k>``).
    """
    scores = np.asarray(scores, dtype="float64")
    labels = frame[label_column].to_numpy() if labels is None else np.asarray(labels)
    if not (len(scores) == len(labels) == len(frame)):
        raise ValueError(
            f"scores ({len(scores)}), labels ({len(labels)}) and frame ({len(frame)}) differ in length"
        )
    data = frame.assign(**{label_column: labels.astype("int64")})
    metrics = ranking_metrics(labels, scores)
    metrics[card_precision_key(top_k)] = card_precision_at_k(
        data, scores, top_k, label_column=label_column
    ).mean
    metrics.update(threshold_metrics(data, scores, threshold, label_column=label_column))
    n = len(labels)
    metrics["transactions"] = float(n)
    metrics["frauds"] = float(labels.sum())
    metrics["fraud_rate"] = float(labels.sum() / n) if n else float("nan")
    return metrics


def finite(values: dict[str, float] | None) -> dict[str, float]:
    """The finite metrics of ``values`` as floats (MLflow rejects NaN metrics)."""
    return {k: float(v) for k, v in (values or {}).items() if v is not None and math.isfinite(v)}
