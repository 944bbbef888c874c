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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ml.lifecycle import registry
from ml.lifecycle.score import ScoreResult, score
from ml.operations import events as ev
from ml.operations.day_report import DayReport, _timed
from ml.operations.day_runs import DayRuns
from ml.operations.feeds import feed_status
from ml.operations.policies import (
    Alert,
    cooldown_until,
    drift_alert,
    performance_alert,
    scheduled_due,
)
from ml.operations.retraining import RetrainingSteps
from ml.platform.dbt_worker import DbtSession
from ml.platform.mlflow_store import quiet_mlflow
from ml.platform.runtime import Runtime
from ml.platform.tables import DRIFT, PERFORMANCE

#: Resource types the daily builds leave out: seeds (reference data, loaded by the first build)
#: and dbt unit tests (they test the SQL, which does not change from day to day; CI runs them).
DAILY_EXCLUDED_RESOURCE_TYPES = ("unit_test", "seed")
ALERT_EVENTS = ("drift_alert", "performance_alert")
#: The dbt selectors (selectors.yml) of a day: before scoring, and after it.
DAILY_SELECTORS = ("medallion", "downstream")


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
        # Where run_day writes the report (None: no report) and whether the policies only
        # record a due retraining (a separate job task runs it) instead of running it.
        self.report_path: Path | None = None
        self.defer_retraining = False

    @contextmanager
    def session(self) -> Iterator[Operator]:
        """MLflow (quiet) and one dbt session for the days operated inside the block."""
        with quiet_mlflow():
            self.experiment_id = self.rt.configure_mlflow()
            from mlflow import MlflowClient

            self.client = MlflowClient()
            with DbtSession(
                self.rt,
                worker=self.settings.replay.dbt_worker,
                dbt_vars={"data_tests_scope": self.settings.replay.data_tests_scope},
            ) as dbt:
                self.dbt = dbt
                try:
                    yield self
                finally:
                    self.dbt = None

    # -- one business day: what `ml operate` and each day of `ml replay` run -------------------------
    def prepare_day(self, day: dt.date, report: DayReport) -> None:
        """Before the day's work. On real data the feeds have landed (``ml operate`` checked
        them): count what they delivered; :class:`~ml.operations.replay.Replayer` lands the
        simulated day here instead."""
        delivered = {f.feed: f.rows for f in feed_status(Path(self.settings.landing.root), day)}
        report.transactions = delivered.get("transactions", 0)
        report.fraud_reports = delivered.get("fraud_reports", 0)

    def run_day(self, day: dt.date) -> DayReport:
        """One business day as an MLflow run of its own: prepare, operate, complete, report."""
        report = DayReport(day=day, phase="day")
        report.run_id = self.start_day_run(day, "day")
        clock = time.perf_counter()
        try:
            self.prepare_day(day, report)
            self.operate(day, report)
            report.seconds["total"] = time.perf_counter() - clock
            self.complete(report)
            if self.report_path is not None:
                self.write_report(report)
        except BaseException as exc:
            self.abort_day_run(report, exc)
            raise
        self.finish_day_run(report)
        return report

    def write_report(self, report: DayReport) -> None:
        """``ml report`` after the day, logged to the day's MLflow run (reports/)."""
        from ml.operations.report import write_report

        self.on_step(report.day, "ml report")
        with _timed(report, "report"):
            written = write_report(self.rt, self.report_path)
            self.client.log_artifact(report.run_id, str(written.path), "reports")
        report.report_path = str(written.path)

    def record(self, *events: ev.ModelEvent) -> None:
        self.log.record(*events)

    def day_events(self, day: dt.date) -> dict[str, dict[str, Any]]:
        return self.log.day_events(day)

    # -- MLflow -------------------------------------------------------------------------------------------
    def build(self, selector: str, report: DayReport, exclude: tuple[str, ...]) -> None:
        self.on_step(report.day, f"dbt build {selector}")
        with _timed(report, f"dbt_{selector}"):
            built = self.dbt.build(selector, exclude)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(built.statuses.items()))
        self.on_step(report.day, f"dbt build {selector}: {counts or 'nothing to build'}")

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

    def trained_on(self, version: str | None) -> dt.date | None:
        """The business day a version trained outside the loop (``ml run``, ``ml train``) counts
        as trained on: its test window's end plus the label delay (when those labels matured)."""
        if version is None:
            return None
        try:
            tags = self.client.get_model_version(self.name, version).tags or {}
            return dt.date.fromisoformat(tags["test_end"]) + self.delay
        except (KeyError, ValueError, AttributeError):
            return None

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
        before, after = DAILY_SELECTORS
        self.build(before, report, DAILY_EXCLUDED_RESOURCE_TYPES)
        self.score_day(day, report)
        self.build(after, report, ("unit_test",))
        self.on_step(day, "policies")
        self.policies(day, report)

    def policies(self, day: dt.date, report: DayReport) -> None:
        retraining = self.settings.retraining
        version = report.scored_by or self.champion_version()
        holding = self.monitor(day, version, report)
        report.monitoring_alerts = [a.event for a in holding]
        last = self.log.last_training(before=day) or self.trained_on(version)
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
        if self.defer_retraining and triggers and "trained" not in already:
            report.retraining_due = triggers
            report.decisions.append("retraining due: " + "; ".join(triggers))
        elif triggers or "trained" in already or "rejected" in already:
            self.retrain(day, triggers or ["resumed retraining"], report)
