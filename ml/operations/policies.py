"""Retraining policies: pure functions of the monitoring marts and the training history.

``ml replay`` (and a daily operation on real data) ask them each day: a scheduled retraining
every ``retraining.every_days`` days, a monitoring-triggered one on a ``drift_alert`` or a
``performance_alert``, never during the cool-down after a retraining.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Alert:
    """A monitoring condition that holds on a day."""

    event: str  # drift_alert | performance_alert
    reason: str
    details: dict[str, Any]


def drift_alert(
    drift: pd.DataFrame,
    day: dt.date,
    *,
    psi_threshold: float | None,
    days: int,
    min_features: int,
    features: list[str],
) -> Alert | None:
    """A ``drift_alert`` if, on each of the ``days`` days ending ``day``, at least ``min_features``
    of ``features`` have PSI >= ``psi_threshold``.

    ``drift``: the champion's rows of gold.feature_drift_daily (tx_date, feature, psi); a day
    without rows (not scored by the champion) breaks the streak.
    """
    if psi_threshold is None or drift.empty:
        return None
    window = [day - dt.timedelta(days=i) for i in range(days)][::-1]
    rows = drift.loc[drift["feature"].isin(features)].copy()
    rows["tx_date"] = [pd.Timestamp(v).date() for v in rows["tx_date"]]
    drifted: dict[str, list[str]] = {}
    worst: dict[str, float] = {}
    for d in window:
        of_day = rows.loc[(rows["tx_date"] == d) & rows["psi"].notna()]
        hot = of_day.loc[of_day["psi"] >= psi_threshold].sort_values("psi", ascending=False)
        if len(hot) < min_features:
            return None
        drifted[d.isoformat()] = list(hot["feature"])
        for feature, psi in zip(hot["feature"], hot["psi"], strict=True):
            worst[feature] = max(worst.get(feature, 0.0), float(psi))
    top = sorted(worst, key=worst.get, reverse=True)
    shown = ", ".join(f"{f} {worst[f]:.2f}" for f in top[:3]) + (" ..." if len(top) > 3 else "")
    return Alert(
        "drift_alert",
        f"PSI >= {psi_threshold:g} on {min_features}+ watched feature(s) for {days} day(s) "
        f"({window[0]}..{window[-1]}): {shown}",
        {
            "psi_threshold": psi_threshold,
            "days": [d.isoformat() for d in window],
            "drifted": drifted,
            "max_psi": worst,
            "watched_features": features,
        },
    )


def performance_alert(
    performance: pd.DataFrame, *, min_average_precision: float | None, days: int
) -> Alert | None:
    """A ``performance_alert`` if the champion's average precision is below
    ``min_average_precision`` on each of its last ``days`` matured days with both classes.

    ``performance``: the champion's rows of gold.model_performance_daily (tx_date, average_precision).
    """
    if min_average_precision is None or performance.empty:
        return None
    rows = (
        performance.loc[performance["average_precision"].notna()].sort_values("tx_date").tail(days)
    )
    if len(rows) < days or not (rows["average_precision"] < min_average_precision).all():
        return None
    dates = [pd.Timestamp(v).date() for v in rows["tx_date"]]
    values = [float(v) for v in rows["average_precision"]]
    shown = ", ".join(f"{d:%m-%d} {v:.3f}" for d, v in zip(dates, values, strict=True))
    return Alert(
        "performance_alert",
        f"average precision below {min_average_precision:g} on the champion's last {days} matured day(s): {shown}",
        {
            "min_average_precision": min_average_precision,
            "days": [d.isoformat() for d in dates],
            "average_precision": values,
        },
    )


def scheduled_due(day: dt.date, last_training: dt.date | None, every_days: int) -> bool:
    """Whether a scheduled retraining is due on ``day``."""
    return every_days > 0 and (last_training is None or (day - last_training).days >= every_days)


def cooldown_until(last_training: dt.date | None, cooldown_days: int) -> dt.date | None:
    """Last day of the cool-down after the training of ``last_training`` (None: no cool-down)."""
    if last_training is None or cooldown_days <= 0:
        return None
    return last_training + dt.timedelta(days=cooldown_days - 1)
