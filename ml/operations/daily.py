"""One business day of operation: build, score, monitor, policies, retraining, events.

Every decision is a row of ``scoring.model_events`` (ml/operations/events.py) with its reason and
the MLflow run holding the evidence (train, validate and promote log their own runs; each day has
a run of its own, with the day's numbers as metrics and its events as an artifact).

Resumable: the events are the state. Within an interrupted day the steps whose event exists
(scored, trained, validated, promoted) are not repeated; everything else is idempotent
(predictions and events are written with ``insert_new`` on their keys).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pandas as pd

from ml.lifecycle import registry
from ml.lifecycle.score import ScoreResult, score
from ml.operations import events as ev
from ml.operations.day_report import DayReport, _timed
from ml.operations.day_runs import DayRuns
from ml.operations.policies import (
    Alert,
    cooldown_until,
    drift_alert,
    performance_alert,
    scheduled_due,
)
from ml.operations.retraining import RetrainingSteps
from ml.platform.dbt_worker import DbtSession
from ml.platform.runtime import Runtime
from ml.platform.tables import DRIFT, PERFORMANCE

#: Resource types the daily builds leave out: seeds (reference data, loaded by the first build)
#: and dbt unit tests (they test the SQL, which does not change from day to day; CI runs them).
DAILY_EXCLUDED_RESOURCE_TYPES = ("unit_test", "seed")
ALERT_EVENTS = ("drift_alert", "performance_alert")


class Operator(DayRuns, RetrainingSteps):
    """Operates business days on one runtime: build, score, monitor, apply the retraining
    policies, record every decision as an event (``scoring.model_events``) and each day as an
    MLflow run. ``ml replay`` drives it over a simulated world; the steps are the same on real data.
    """

    def __init__(self, rt: Runtime, on_step: Callable[[dt.date, str], None] | None = None):
        self.rt = rt
        self.settings = rt.settings
        self.name = rt.model_name
        self.delay = dt.timedelta(days=rt.settings.training.delay_days)
        self.on_step = on_step or (lambda day, step: None)
        self.log = ev.EventLog(rt)
        self.dbt: DbtSession | None = None
        self.client: Any = None
        self.experiment_id = ""
        self._importance: dict[str, list[str]] = {}

    def record(self, *events: ev.ModelEvent) -> None:
        self.log.record(*events)

    def day_events(self, day: dt.date) -> dict[str, dict[str, Any]]:
        return self.log.day_events(day)

    # -- MLflow -------------------------------------------------------------------------------------------
    def build(self, selector: str, report: DayReport, exclude: tuple[str, ...]) -> None:
        self.on_step(report.day, f"dbt build {selector}")
        with _timed(report, f"dbt_{selector}"):
            self.dbt.build(selector, exclude)

    def score_day(self, day: dt.date, report: DayReport) -> None:

        done = self.day_events(day).get("scored")
        if done is not None:  # scored before an interruption
            report.scored_by = done["model_version"]
            report.scored = int(done["details"].get("rows", 0))
            report.alerts = int(done["details"].get("alerts", 0))
            return
        self.on_step(day, "ml score")
        with _timed(report, "score"):
            result = self.score_rows(day)
        report.scored_by, report.scored, report.alerts = (
            result.model_version,
            result.rows_read,
            result.alerts,
        )
        self.record(
            ev.ModelEvent(
                day,
                "scored",
                self.name,
                result.model_version,
                f"scored {result.rows_read:,} transactions of {day} with the champion v{result.model_version}",
                {
                    "rows": result.rows_read,
                    "rows_added": result.rows_added,
                    "alerts": result.alerts,
                    "alert_threshold": result.alert_threshold,
                },
                report.run_id,
            )
        )

    def score_rows(self, day: dt.date) -> ScoreResult:
        """Score ``day`` into scoring.predictions (batch: ``ml score``)."""
        return score(self.rt, start=day, end=day)

    def champion_version(self) -> str | None:

        champion = registry.version_by_alias(self.client, self.name, registry.CHAMPION)
        return str(champion.version) if champion is not None else None

    def watched_features(self, version: str) -> list[str]:
        """``retraining.drift_features``, else the version's most important features."""
        retraining = self.settings.retraining
        if retraining.drift_features:
            return list(retraining.drift_features)
        if version not in self._importance:
            self._importance[version] = self._important_features(
                version, retraining.drift_top_features
            )
        return self._importance[version]

    def _important_features(self, version: str, top: int) -> list[str]:
        import mlflow
        from mlflow.exceptions import MlflowException

        features = list(self.settings.model.features)
        try:
            mv = self.client.get_model_version(self.name, version)
            run_id = (mv.tags or {}).get("run_id") or mv.run_id
            text = mlflow.artifacts.load_text(f"runs:/{run_id}/feature_importance.csv")
            importance = pd.read_csv(io.StringIO(text))
        except (MlflowException, OSError, ValueError, KeyError):
            return features
        ranked = importance.loc[
            importance["feature"].isin(features) & (importance["importance_mean"] > 0)
        ]
        ranked = (
            ranked.sort_values("importance_mean", ascending=False)["feature"].head(top).tolist()
        )
        return ranked or features

    def monitor(self, day: dt.date, version: str, report: DayReport) -> list[Alert]:
        """Read the champion's monitoring rows and return the alerts that hold on ``day``."""
        retraining = self.settings.retraining
        watched = self.watched_features(version)
        with self.rt.warehouse(read_only=True) as wh:
            performance = (
                wh.read(
                    PERFORMANCE, ["tx_date", "model_name", "model_version", "average_precision"]
                )
                if wh.exists(PERFORMANCE)
                else pd.DataFrame(
                    columns=["tx_date", "model_name", "model_version", "average_precision"]
                )
            )
            lookback = day - dt.timedelta(days=retraining.drift_days - 1)
            drift = (
                wh.read(
                    DRIFT,
                    ["tx_date", "model_name", "model_version", "feature", "psi"],
                    "tx_date",
                    lookback,
                    day,
                )
                if wh.exists(DRIFT)
                else pd.DataFrame(
                    columns=["tx_date", "model_name", "model_version", "feature", "psi"]
                )
            )
        for frame in (performance, drift):
            frame["tx_date"] = [pd.Timestamp(v).date() for v in frame["tx_date"]]
        matured = performance.loc[
            (performance["tx_date"] == day - self.delay) & (performance["model_name"] == self.name)
        ]
        if len(matured) and matured["average_precision"].notna().any():
            report.matured_day = day - self.delay
            report.matured_average_precision = float(matured["average_precision"].dropna().iloc[-1])
        mine = (drift["model_name"] == self.name) & (drift["model_version"].astype(str) == version)
        drift = drift.loc[mine]
        threshold = retraining.psi_threshold
        if threshold is not None:
            today = drift.loc[
                (drift["tx_date"] == day)
                & drift["feature"].isin(watched)
                & (drift["psi"] >= threshold)
            ]
            report.drifted_features = sorted(today["feature"])
        champion_rows = performance.loc[
            (performance["model_name"] == self.name)
            & (performance["model_version"].astype(str) == version)
        ]
        alerts = [
            drift_alert(
                drift,
                day,
                psi_threshold=threshold,
                days=retraining.drift_days,
                min_features=retraining.drift_min_features,
                features=watched,
            ),
            performance_alert(
                champion_rows,
                min_average_precision=retraining.min_average_precision,
                days=retraining.performance_days,
            ),
        ]
        return [a for a in alerts if a is not None]

    def complete(self, report: DayReport, extra: dict[str, Any] | None = None) -> None:
        report.champion_version = self.champion_version()
        details = {**report.summary(), **(extra or {})}
        self.record(
            ev.ModelEvent(
                report.day,
                "day_completed",
                self.name,
                report.champion_version,
                f"{report.phase} {report.day} completed",
                details,
                report.run_id,
            )
        )

    # -- a whole day ----------------------------------------------------------------------------------
    def operate(self, day: dt.date, report: DayReport) -> None:
        """The day's work once its files have landed: build the medallion (bronze loads only the
        new files), score the day with the champion, build the monitoring marts (the day's drift,
        the performance of the day whose labels matured today), then apply the policies."""
        self.build("medallion", report, DAILY_EXCLUDED_RESOURCE_TYPES)
        self.score_day(day, report)
        self.build("downstream", report, ("unit_test",))
        self.on_step(day, "policies")
        self.policies(day, report)

    def policies(self, day: dt.date, report: DayReport) -> None:
        retraining = self.settings.retraining
        version = report.scored_by or self.champion_version()
        holding = self.monitor(day, version, report)
        report.monitoring_alerts = [a.event for a in holding]
        last = self.log.last_training(before=day)
        scheduled = scheduled_due(day, last, retraining.every_days)
        cooldown_end = cooldown_until(last, retraining.cooldown_days)
        cooling = cooldown_end is not None and day <= cooldown_end
        yesterday = self.day_events(day - dt.timedelta(days=1)).get("day_completed")
        held_yesterday = set((yesterday or {}).get("details", {}).get("alerts_holding", []))
        triggers = []
        if scheduled:
            since = (
                f"{(day - last).days} days since the last training" if last else "no training yet"
            )
            triggers.append(f"scheduled: {since} (every {retraining.every_days})")
        already = self.day_events(day)
        for alert in holding:
            if scheduled or not cooling:
                action = "retrain"
                triggers.append(f"{alert.event}: {alert.reason}")
            else:
                action = f"none: cool-down after the retraining of {last} until {cooldown_end}"
                report.decisions.append(f"{alert.event} held ({action})")
                if alert.event in held_yesterday:
                    continue  # already reported when it started holding
            if alert.event not in already:
                self.record(
                    ev.ModelEvent(
                        day,
                        alert.event,
                        self.name,
                        version,
                        alert.reason,
                        {**alert.details, "action": action},
                        report.run_id,
                    )
                )
        if triggers or "trained" in already or "rejected" in already:
            self.retrain(day, triggers or ["resumed retraining"], report)
