"""Each business day is an MLflow run of its own, with the day's numbers and events."""

from __future__ import annotations

import contextlib
import datetime as dt
import time

from ml.operations import events as ev
from ml.operations.day_report import DayReport


class DayRuns:
    """The MLflow runs of :class:`~ml.operations.daily.Operator` (which provides ``client``,
    ``experiment_id``, ``name`` and ``day_events``)."""

    def start_day_run(self, day: dt.date, phase: str) -> str:
        """A new MLflow run for the day; runs of the day left RUNNING by an interruption are
        marked KILLED first."""
        stale = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.replay_day = '{day.isoformat()}' and tags.model_name = '{self.name}' "
            "and attributes.status = 'RUNNING'",
        )
        for run in stale:
            self.client.set_terminated(run.info.run_id, "KILLED")
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"replay {day}",
            tags={
                "fraudops.command": "replay",
                "replay_day": day.isoformat(),
                "replay_phase": phase,
                "model_name": self.name,
            },
        )
        return run.info.run_id

    def abort_day_run(self, report: DayReport, exc: BaseException) -> None:
        """Mark the day's run FAILED (best effort). After Ctrl-C MLflow is left alone: the
        interruption may have hit one of its store transactions; the rerun marks the run KILLED."""
        if isinstance(exc, KeyboardInterrupt):
            return
        with contextlib.suppress(Exception):
            self.finish_day_run(report, "FAILED")

    def finish_day_run(self, report: DayReport, status: str = "FINISHED") -> None:
        from mlflow.entities import Metric, Param, RunTag

        if report.run_id is None:
            return
        now = int(time.time() * 1000)
        if status == "FINISHED":
            values = {
                "transactions": report.transactions,
                "fraud_reports": report.fraud_reports,
                "scored": report.scored,
                "alerts": report.alerts,
                "drifted_features": len(report.drifted_features),
                "decisions": len(report.decisions),
                **{f"seconds_{k}": v for k, v in report.seconds.items()},
            }
            if report.matured_average_precision is not None:
                values["matured_average_precision"] = report.matured_average_precision
            self.client.log_batch(
                report.run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
                params=[Param("replay_day", report.day.isoformat()), Param("phase", report.phase)],
                tags=[
                    RunTag("champion_version", str(report.champion_version or "none")),
                    RunTag("scored_by", str(report.scored_by or "none")),
                    RunTag("monitoring_alerts", ",".join(report.monitoring_alerts) or "none"),
                    RunTag("decisions", "; ".join(report.decisions)[:5000] or "none"),
                ],
            )
            day_events = list(self.day_events(report.day).values())
            doc = {"day": {"day": report.day, **report.summary()}, "events": day_events}
            self.client.log_dict(report.run_id, ev.jsonable(doc), "replay_day.json")
        self.client.set_terminated(report.run_id, status)

    # -- steps ------------------------------------------------------------------------------------------
