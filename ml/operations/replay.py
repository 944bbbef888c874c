"""``ml replay``: operate the whole system day by day over a simulated world.

The world (``settings.simulation``, drift included) is simulated once, in memory; then:

* **bootstrap** (business day ``start - 1``): land the ``replay.warmup_days`` days before
  ``start`` in one go, ``dbt build --selector medallion``, train, validate and promote the first
  champion;
* **each day D** from ``start`` to ``end``:

  1. land D's files (its transactions and the fraud reports reported on D),
  2. ``dbt build --selector medallion`` (bronze loads only the new files),
  3. ``ml score`` D with the champion,
  4. ``dbt build --selector downstream``: the day's drift and the performance of the day whose
     labels matured today (D - ``training.delay_days``) reach the monitoring marts,
  5. policies (``settings.retraining``): a scheduled retraining every ``every_days`` days, and a
     monitoring-triggered one (``drift_alert`` / ``performance_alert``, outside a cool-down):
     train a challenger on the latest mature window, validate it, promote it if it passes.

Each day is :meth:`ml.operations.daily.Operator.run_day`, the same code ``ml operate`` runs
on real data (the replay only lands the day first, in ``prepare_day``): every decision is a row of ``scoring.model_events`` with its reason and the MLflow run
holding the evidence; each replayed day has a run of its own, ``replay <day>``.

Resumable: the events are the state. A rerun continues after the last ``day_completed`` event,
and within an interrupted day skips the steps whose event exists (scored, trained, validated,
promoted). Everything else is idempotent: landing files are rewritten whole and atomically,
bronze skips files it has loaded, predictions and events are written with ``insert_new`` on
their keys. Replay needs a landing root and a warehouse of its own: files or transactions of
days after the next day to replay stop it with one line.

Fast: on DuckDB, dbt runs in one worker process that parses the project once
(ml/platform/dbt_worker.py). Builds leave out what a replay does not change: dbt unit tests
(they test the SQL; CI runs them) and, after the bootstrap build, seeds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.lifecycle.score import ScoreResult
from ml.operations.daily import Operator
from ml.operations.day_report import DayReport, _timed
from ml.operations.events import BOOTSTRAP
from ml.platform.errors import ConfigError, DataNotReadyError, FraudopsError
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings
from ml.world.landing import DATASETS, write_landing
from ml.world.simulator import SimulatedWorld, simulate

BOOTSTRAP_EXCLUDED_RESOURCE_TYPES = ("unit_test",)


class ReplayError(FraudopsError):
    """The replay cannot start or continue as asked (one line says what to do)."""


@dataclass
class ReplayResult:
    """What ``replay`` did: the days it ran (already completed days are not repeated)."""

    start: dt.date
    end: dt.date
    days: list[DayReport]
    resumed_after: dt.date | None  # last day completed before this call
    bootstrap: DayReport | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ReplayPlan:
    start: dt.date
    end: dt.date
    warmup_start: dt.date


def plan(
    settings: Settings, start: dt.date | None = None, end: dt.date | None = None
) -> ReplayPlan:
    """The replayed days and the warm-up, checked against the simulated horizon."""
    sim = settings.simulation
    first, last = sim.start, sim.start + dt.timedelta(days=sim.days - 1)
    warmup = settings.replay.warmup_days
    start = start or settings.replay.start or first + dt.timedelta(days=warmup)
    end = end or settings.replay.end or last
    if not first < start <= end <= last:
        raise ConfigError(
            f"replay days {start}..{end} must lie inside the simulated days {first}..{last} "
            "(after the first one); change --start/--end or simulation.start/days"
        )
    warmup_start = start - dt.timedelta(days=warmup)
    if warmup_start < first:
        raise ConfigError(
            f"the {warmup} warm-up days before {start} begin on {warmup_start}, before the simulation "
            f"starts on {first}; start later or lower replay.warmup_days"
        )
    return ReplayPlan(start, end, warmup_start)


def world_fingerprint(settings: Settings) -> str:
    """A digest of the simulation settings: the same digest, the same world."""
    doc = json.dumps(settings.simulation.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _landed_days(root: Path) -> dict[str, dt.date]:
    """Latest partition day of each landing dataset under ``root``."""
    latest: dict[str, dt.date] = {}
    for dataset in DATASETS.values():
        for folder in (root / dataset.name).glob(f"{dataset.partition_key}=*"):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(folder.name.split("=", 1)[1])
                if any(folder.glob("*.parquet")):
                    latest[dataset.name] = max(latest.get(dataset.name, day), day)
    return latest


class Replayer(Operator):
    """An :class:`Operator` over a simulated world: it lands each day's files itself."""

    def __init__(
        self,
        rt: Runtime,
        world: SimulatedWorld | None = None,
        on_step: Callable[[dt.date, str], None] | None = None,
        serve_url: str | None = None,
    ):
        super().__init__(rt, on_step)
        self.landing_root = Path(rt.settings.landing.root).resolve()
        self.world = world
        self.serve_url = serve_url

    def score_rows(self, day: dt.date) -> ScoreResult:
        """With a ``serve_url``: the day's landed transactions and reports go through the
        running scoring server in time order, its scores into scoring.predictions."""
        if self.serve_url is None:
            return super().score_rows(day)
        from ml.serving.client import serve_landed_day

        return serve_landed_day(self.rt, self.serve_url, self.landing_root, day)

    def check_inputs(self, next_day: dt.date) -> None:
        """Refuse landing files or transactions of days after ``next_day`` (another run's data)."""
        for dataset, day in _landed_days(self.landing_root).items():
            if day > next_day:
                raise ReplayError(
                    f"the landing root {self.landing_root} already holds {dataset} of {day}, after the next "
                    f"day to replay ({next_day}); give the replay a landing root of its own (landing.root)"
                )
        with contextlib.suppress(DataNotReadyError), self.rt.warehouse(read_only=True) as wh:
            table = self.settings.model.feature_table
            if wh.exists(table):
                latest = wh.scalar(f"select max(tx_date) from {table}")
                if latest is not None and pd.Timestamp(latest).date() > next_day:
                    raise ReplayError(
                        f"{table} already holds transactions of {pd.Timestamp(latest).date()}, after the next day "
                        f"to replay ({next_day}); give the replay a warehouse of its own (FRAUDOPS_DUCKDB_PATH)"
                    )

    def land(self, first: dt.date, last: dt.date, report: DayReport) -> None:
        self.on_step(report.day, "land")
        with _timed(report, "land"):
            result = write_landing(self.world, self.landing_root, first, last)
        report.transactions = result.transactions
        report.fraud_reports = result.fraud_reports

    def prepare_day(self, day: dt.date, report: DayReport) -> None:
        """Land the simulated day's files; then the day runs as on real data."""
        self.land(day, day, report)

    def bootstrap(self, plan_: ReplayPlan) -> DayReport:
        day = plan_.start - dt.timedelta(days=1)
        report = DayReport(day=day, phase=BOOTSTRAP)
        report.run_id = self.start_day_run(day, BOOTSTRAP)
        clock = time.perf_counter()
        try:
            self.land(plan_.warmup_start, day, report)
            self.build("medallion", report, BOOTSTRAP_EXCLUDED_RESOURCE_TYPES)
            self.retrain(
                day,
                [f"bootstrap: first champion, trained on the warm-up {plan_.warmup_start}..{day}"],
                report,
            )
            champion = self.champion_version()
            if champion is None:
                rejected = self.day_events(day).get("rejected")
                why = (
                    rejected["reason"]
                    if rejected is not None
                    else "no champion after the bootstrap"
                )
                raise ReplayError(
                    f"the bootstrap model was not promoted ({why}); lower the validation.min_* settings or "
                    "lengthen replay.warmup_days, then run ml replay again"
                )
            report.seconds["total"] = time.perf_counter() - clock
            self.complete(
                report,
                {
                    "world": world_fingerprint(self.settings),
                    "warmup": [plan_.warmup_start.isoformat(), day.isoformat()],
                    "simulation": self.settings.simulation.model_dump(mode="json"),
                },
            )
        except BaseException as exc:
            self.abort_day_run(report, exc)
            raise
        self.finish_day_run(report)
        return report


def replay(
    rt: Runtime,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    on_step: Callable[[dt.date, str], None] | None = None,
    on_day: Callable[[DayReport], None] | None = None,
    serve_url: str | None = None,
) -> ReplayResult:
    """Replay ``start..end`` (defaults: settings.replay), bootstrapping a champion first if needed,
    or continue an interrupted replay; ``on_step(day, step)`` and ``on_day(report)`` report progress.
    With ``serve_url``, each day is scored through that running ``ml serve`` instead of in batch."""
    clock = time.perf_counter()
    settings = rt.settings
    plan_ = plan(settings, start, end)
    replayer = Replayer(rt, on_step=on_step, serve_url=serve_url)
    replayer.log.load()
    last_done, boot = replayer.log.completed()
    if boot is not None and boot.get("world") != world_fingerprint(settings):
        raise ReplayError(
            "this warehouse holds the replay of another world (the simulation settings differ from those of "
            f"its bootstrap on {last_done and boot.get('warmup', ['', ''])[1]}); use the same settings, or a new "
            "warehouse, landing root and MLflow store"
        )
    if (
        last_done is not None
        and boot is not None
        and plan_.start > last_done + dt.timedelta(days=1)
    ):
        raise ReplayError(
            f"the replay is complete up to {last_done}; continue from {last_done + dt.timedelta(days=1)} "
            "(--start on or before it) so that no day is skipped"
        )
    next_day = plan_.start if boot is None else max(plan_.start, last_done + dt.timedelta(days=1))
    days = [next_day + dt.timedelta(days=i) for i in range((plan_.end - next_day).days + 1)]
    result = ReplayResult(
        plan_.start, plan_.end, [], resumed_after=last_done if boot is not None else None
    )
    if boot is not None and not days:
        result.seconds = time.perf_counter() - clock
        return result

    replayer.check_inputs(next_day)
    with replayer.session():
        replayer.world = simulate(settings.simulation)
        if boot is None:
            result.bootstrap = replayer.bootstrap(plan_)
            if on_day:
                on_day(result.bootstrap)
        for day in days:
            report = replayer.run_day(day)
            result.days.append(report)
            if on_day:
                on_day(report)
    result.seconds = time.perf_counter() - clock
    return result
