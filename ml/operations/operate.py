"""``ml operate``: one business day on real data, the same day ``ml replay`` runs per day.

1. **Freshness gate**: the day's partition of each landing feed (transactions by ``tx_date``,
   fraud reports by ``report_date``) must hold files, else the day stops with one line naming the
   feed and the day (``--allow-late`` operates it anyway);
2. a champion must exist (the first one comes from ``ml run`` or ``ml train/validate/promote``);
3. :meth:`ml.operations.daily.Operator.run_day`: incremental medallion build, score the day,
   monitoring marts, the retraining policies, events, the day's MLflow run, the report.

Idempotent per day: the events are the state (``scoring.model_events``). A completed day is not
operated again (nothing happens); an interrupted day resumes, skipping the steps whose event
exists. With ``defer_retraining`` (the Databricks job) a due retraining is recorded and left to
the job's conditional ``retrain`` task (:func:`retrain_due`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ml.lifecycle import registry
from ml.operations.daily import Operator
from ml.operations.day_report import DayReport
from ml.operations.feeds import FeedStatus, feed_status
from ml.platform.errors import DataNotReadyError, FraudopsError, ModelRegistryError
from ml.platform.runtime import Runtime
from ml.platform.task_values import set_task_values
from ml.world.landing import DATASETS

#: Task values ``ml operate`` sets for the Databricks job's condition tasks: key, and the value
#: meaning "nothing to do" (resources/fraudops_job.yml compares with it).
TASK_VALUES = {"retrain": ("retrain", "false"), "alerts": ("alerts", "none")}


class LateDataError(FraudopsError):
    """A feed has not delivered the business day (exit code 3: the job can tell it apart)."""

    exit_code = 3


@dataclass
class OperateResult:
    day: dt.date
    feeds: list[FeedStatus] = field(default_factory=list)
    report: DayReport | None = None  # None: the day was completed before (nothing done)
    late: list[str] = field(default_factory=list)  # feeds operated without (--allow-late)

    @property
    def already_done(self) -> bool:
        return self.report is None


def default_day(operator: Operator, root: Path) -> dt.date:
    """The day after the last operated day; before any, the latest delivered transactions day."""
    last, _ = operator.log.completed()
    if last is not None:
        return last + dt.timedelta(days=1)
    transactions = next(iter(DATASETS.values()))
    days = [
        dt.date.fromisoformat(p.name.split("=", 1)[1])
        for p in (root / transactions.name).glob(f"{transactions.partition_key}=*")
        if any(p.glob("*.parquet"))
    ]
    if not days:
        raise DataNotReadyError(
            f"no transactions have landed under {root}; land a day's files (or ml simulate), then ml operate"
        )
    return max(days)


def operate(
    rt: Runtime,
    day: dt.date | None = None,
    *,
    allow_late: bool = False,
    defer_retraining: bool = False,
    report_path: Path | str | None = None,
    on_step: Callable[[dt.date, str], None] | None = None,
) -> OperateResult:
    """Operate ``day`` (default: the day after the last operated one); see the module doc."""
    root = Path(rt.settings.landing.root).resolve()
    operator = Operator(rt, on_step=on_step)
    operator.log.load()
    day = day or default_day(operator, root)
    result = OperateResult(day, feed_status(root, day))
    done = operator.day_events(day).get("day_completed")
    if done is not None:  # a rerun: nothing to do, but the job's condition tasks need the values
        details = done.get("details") or {}
        publish_decisions(details.get("retraining_due", []), details.get("alerts_holding", []))
        return result
    for feed in result.feeds:
        if feed.files == 0:
            if not allow_late:
                raise LateDataError(
                    f"the {feed.feed} feed has not delivered {day} (no files in {feed.partition}); "
                    "wait for it, or operate the day without it: ml operate --allow-late"
                )
            result.late.append(feed.feed)
    operator.report_path = Path(report_path) if report_path else None
    operator.defer_retraining = defer_retraining
    with operator.session():
        if registry.version_by_alias(operator.client, operator.name, registry.CHAMPION) is None:
            raise ModelRegistryError(
                f"no champion of {operator.name} yet: ml operate scores with it; train, validate and "
                "promote a first model (ml run, or ml train / ml validate / ml promote)"
            )
        result.report = operator.run_day(day)
    report = result.report
    publish_decisions(report.retraining_due, report.monitoring_alerts)
    return result


def publish_decisions(retraining_due: list[str], alerts: list[str]) -> bool:
    """The day's decisions as task values of the Databricks job (no-op elsewhere)."""
    retrain, alert = TASK_VALUES["retrain"], TASK_VALUES["alerts"]
    return set_task_values(
        **{
            retrain[0]: "true" if retraining_due else retrain[1],
            alert[0]: ",".join(alerts) or alert[1],
        }
    )


def retrain_due(rt: Runtime, day: dt.date | None = None) -> DayReport | None:
    """Run the retraining that ``operate(defer_retraining=True)`` recorded as due on ``day``
    (default: the last operated day); None if none is due or it ran already."""
    operator = Operator(rt)
    operator.log.load()
    day = day or operator.log.completed()[0]
    done = operator.day_events(day).get("day_completed") if day else None
    triggers = list((done or {}).get("details", {}).get("retraining_due", []))
    if not triggers or {"promoted", "rejected"} & set(operator.day_events(day)):
        return None
    report = DayReport(day=day, phase="retraining")
    with operator.session():
        report.run_id = operator.start_day_run(day, "retraining")
        try:
            operator.retrain(day, triggers, report)
        except BaseException as exc:
            operator.abort_day_run(report, exc)
            raise
        report.champion_version = operator.champion_version()
        operator.finish_day_run(report)
    return report
