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

Every decision is a row of ``scoring.model_events`` (ml/events.py) with its reason and the MLflow
run holding the evidence (train, validate and promote log their own runs; each replayed day has
a run of its own, ``replay <day>``, with the day's numbers as metrics and its events as an
artifact).

Resumable: the events are the state. A rerun continues after the last ``day_completed`` event,
and within an interrupted day skips the steps whose event exists (scored, trained, validated,
promoted). Everything else is idempotent: landing files are rewritten whole and atomically,
bronze skips files it has loaded, predictions and events are written with ``insert_new`` on
their keys. Replay needs a landing root and a warehouse of its own: files or transactions of
days after the next day to replay stop it with one line.

Fast: on DuckDB, dbt runs in one worker process that imports dbt and parses the project once,
then builds each day with the parsed manifest (dbt-duckdb releases the database file after each
build, so ``ml`` can write in between). Builds leave out what a replay does not change: dbt unit
tests (they test the SQL; CI runs them) and, after the bootstrap build, seeds. Other targets run
one dbt subprocess per build (ml.dbt_runner).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pandas as pd

from ml import events as ev
from ml.dbt_runner import DbtError, run_dbt
from ml.errors import ConfigError, DataNotReadyError, FraudopsError
from ml.settings import Settings

PERFORMANCE_TABLE = "gold.model_performance_daily"
DRIFT_TABLE = "gold.feature_drift_daily"
#: Resource types the daily builds leave out: seeds (reference data, loaded by the bootstrap build)
#: and dbt unit tests (they test the SQL, which does not change during a replay; CI runs them).
DAILY_EXCLUDED_RESOURCE_TYPES = ("unit_test", "seed")
BOOTSTRAP_EXCLUDED_RESOURCE_TYPES = ("unit_test",)
ALERT_EVENTS = ("drift_alert", "performance_alert")
BOOTSTRAP = "bootstrap"


class ReplayError(FraudopsError):
    """The replay cannot start or continue as asked (one line says what to do)."""


# --- policies (pure functions, unit-tested) ---------------------------------------------------------


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
        {"psi_threshold": psi_threshold, "days": [d.isoformat() for d in window], "drifted": drifted,
         "max_psi": worst, "watched_features": features},
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
    rows = performance.loc[performance["average_precision"].notna()].sort_values("tx_date").tail(days)
    if len(rows) < days or not (rows["average_precision"] < min_average_precision).all():
        return None
    dates = [pd.Timestamp(v).date() for v in rows["tx_date"]]
    values = [float(v) for v in rows["average_precision"]]
    shown = ", ".join(f"{d:%m-%d} {v:.3f}" for d, v in zip(dates, values, strict=True))
    return Alert(
        "performance_alert",
        f"average precision below {min_average_precision:g} on the champion's last {days} matured day(s): {shown}",
        {"min_average_precision": min_average_precision, "days": [d.isoformat() for d in dates], "average_precision": values},
    )


def scheduled_due(day: dt.date, last_training: dt.date | None, every_days: int) -> bool:
    """Whether a scheduled retraining is due on ``day``."""
    return every_days > 0 and (last_training is None or (day - last_training).days >= every_days)


def cooldown_until(last_training: dt.date | None, cooldown_days: int) -> dt.date | None:
    """Last day of the cool-down after the training of ``last_training`` (None: no cool-down)."""
    if last_training is None or cooldown_days <= 0:
        return None
    return last_training + dt.timedelta(days=cooldown_days - 1)


# --- dbt: one worker process on DuckDB, a subprocess per build elsewhere ---------------------------


WORKER_LOG_VARIABLE = "FRAUDOPS_REPLAY_DBT_LOG"


def dbt_worker_main() -> None:
    """The dbt worker process: parse once, then serve dbt commands with the parsed manifest.

    Requests and replies are JSON lines on stdin / the original stdout; dbt's own output goes to
    the log file named by ``$FRAUDOPS_REPLAY_DBT_LOG``. Ends at end of input (the replay closed
    the pipe, or died).
    """
    import sys

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    log = os.open(os.environ[WORKER_LOG_VARIABLE], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from dbt.cli.main import dbtRunner

    runner = None
    for line in sys.stdin:
        kind, args = json.loads(line)
        try:
            if kind == "parse":
                parsed = dbtRunner().invoke(args)
                runner = dbtRunner(manifest=parsed.result) if parsed.success else None
                reply = {"success": bool(parsed.success), "error": _dbt_exception(parsed), "nodes": []}
            elif runner is None:
                reply = {"success": False, "error": "the dbt project could not be parsed"}
            else:
                result = runner.invoke(args)
                _release_duckdb()
                reply = {"success": bool(result.success), "error": _dbt_exception(result), "nodes": _dbt_nodes(result)}
        except Exception as exc:  # noqa: BLE001 - report anything to the replay, keep serving
            reply = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")


def _release_duckdb() -> None:
    """Close dbt-duckdb's database after a build, so that other processes (``ml``) can open the
    file. dbt-duckdb keeps its environment (and the file lock) for the life of the process and
    only drops it at exit; its next build reopens the database from the same environment."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # not the duckdb adapter
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()


def _dbt_exception(result: Any) -> str:
    """dbt's error in one line: its header ("Parsing Error") and the detail lines after it."""
    exc = getattr(result, "exception", None)
    lines = [line.strip() for line in str(exc or "").splitlines() if line.strip()]
    return " ".join(lines[:3])[:500]


def _dbt_nodes(result: Any) -> list[dict[str, Any]]:
    nodes = []
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        node = getattr(r, "node", None)
        nodes.append(
            {
                "unique_id": getattr(node, "unique_id", ""),
                "status": str(getattr(r.status, "value", r.status)),
                "message": str(r.message or ""),
                "execution_time": float(r.execution_time or 0.0),
            }
        )
    return nodes


@dataclass
class DbtBuild:
    """What one dbt build did."""

    selector: str
    seconds: float
    statuses: dict[str, int]


class DbtSession:
    """Runs the replay's dbt builds for one target, with the replay's landing root and vars."""

    def __init__(self, settings: Settings, target: str, target_path: Path, landing_root: Path, worker: bool):
        self.settings = settings
        self.target = target
        self.target_path = target_path
        self.env = {"FRAUDOPS_LANDING_ROOT": str(landing_root), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        # the monitoring marts call a day mature with the same delay as ml's training windows
        self.vars = json.dumps({"label_maturity_days": settings.training.delay_days})
        self.use_worker = worker
        self._process: Any = None
        self._busy = False  # a request is being served: stopping now interrupts a build

    def _common(self) -> list[str]:
        """Flags of every dbt command of the replay (the worker gets them all; run_dbt adds the
        project, profiles, target and target path itself)."""
        dbt = self.settings.dbt
        return [
            "--vars", self.vars,
            "--log-path", str(self.target_path / "logs"),
            "--target", self.target,
            "--project-dir", str(Path(dbt.project_dir).resolve()),
            "--profiles-dir", str(Path(dbt.profiles_dir).resolve()),
            "--target-path", str(self.target_path),
        ]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(force=self._busy)

    def _start(self) -> None:
        import subprocess
        import sys

        self.target_path.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, WORKER_LOG_VARIABLE: str(self.log_file)}
        # a session of its own: Ctrl-C reaches the replay, which decides when the worker stops
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from ml.replay import dbt_worker_main; dbt_worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(self.settings.dbt.project_dir).resolve(),
            env=env,
            text=True,
            start_new_session=True,
        )
        self._request(["parse", ["parse", *self._common()]], "parse")

    @property
    def log_file(self) -> Path:
        return self.target_path / "replay-dbt-worker.log"

    def close(self, force: bool = False) -> None:
        """Stop the worker: at the end of its input, or at once (``force``: it may be in the
        middle of a build, after an error or Ctrl-C; DuckDB rolls back the unfinished transaction)."""
        import subprocess

        if self._process is None:
            return
        process, self._process = self._process, None
        if not force:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def build(self, selector: str, exclude_resource_types: tuple[str, ...] = ()) -> DbtBuild:
        args = ["build", "--selector", selector]
        if exclude_resource_types:
            args += ["--exclude-resource-type", *exclude_resource_types]
        started = time.perf_counter()
        if self.use_worker:
            nodes = self._worker_build([*args, *self._common()])
        else:
            result = run_dbt(
                [*args, *self._common()[:4]],
                project_dir=self.settings.dbt.project_dir,
                profiles_dir=self.settings.dbt.profiles_dir,
                target=self.target,
                target_path=self.target_path,
                env=self.env,
            )
            nodes = list(result.nodes.values())
        statuses: dict[str, int] = {}
        for node in nodes:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
        return DbtBuild(selector, time.perf_counter() - started, statuses)

    def _worker_build(self, args: list[str]) -> list[dict[str, Any]]:
        if self._process is None:
            self._start()
        return self._request(["invoke", args], " ".join(args[:3]))

    def _request(self, request: list[Any], what: str) -> list[dict[str, Any]]:
        log = self.log_file
        self._busy = True
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.close(force=True)
            raise DbtError(f"the dbt worker stopped during dbt {what}; see {log}")
        self._busy = False
        reply = json.loads(line)
        if not reply["success"]:
            failed = [n for n in reply.get("nodes", []) if n["status"] in ("error", "fail", "runtime error")]
            detail = (
                f"{failed[0]['unique_id']}: {failed[0]['message']}" if failed else reply.get("error") or f"see {log}"
            )
            raise DbtError(f"dbt {what} failed: {' '.join(detail.split())[:500]}")
        return reply.get("nodes", [])


# --- the replay --------------------------------------------------------------------------------------


@dataclass
class DayReport:
    """What the replay did on one business day (the bootstrap is a day too)."""

    day: dt.date
    phase: str  # "bootstrap" | "day"
    transactions: int = 0
    fraud_reports: int = 0
    scored: int = 0
    alerts: int = 0  # predictions at or above the alert threshold
    scored_by: str | None = None
    champion_version: str | None = None  # at the end of the day
    matured_day: dt.date | None = None
    matured_average_precision: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    monitoring_alerts: list[str] = field(default_factory=list)  # conditions holding today
    decisions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "transactions": self.transactions,
            "fraud_reports": self.fraud_reports,
            "scored": self.scored,
            "alerts": self.alerts,
            "scored_by": self.scored_by,
            "champion_version": self.champion_version,
            "matured_day": self.matured_day,
            "matured_average_precision": self.matured_average_precision,
            "drifted_features": self.drifted_features,
            "alerts_holding": self.monitoring_alerts,
            "decisions": self.decisions,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


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


def plan(settings: Settings, start: dt.date | None = None, end: dt.date | None = None) -> ReplayPlan:
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
    from ml.landing import DATASETS

    latest: dict[str, dt.date] = {}
    for dataset in DATASETS.values():
        for folder in (root / dataset.name).glob(f"{dataset.partition_key}=*"):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(folder.name.split("=", 1)[1])
                if any(folder.glob("*.parquet")):
                    latest[dataset.name] = max(latest.get(dataset.name, day), day)
    return latest


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's INFO chatter and progress bars off while the replay prints its own progress."""
    import warnings

    import mlflow  # noqa: F401 - configures its loggers on import: set their level after that
    from mlflow.utils import logging_utils

    logging_utils.disable_logging()  # its event lines ("Registered model ... already exists")
    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logging_utils.enable_logging()
        logger.setLevel(level)
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved


class Replayer:
    """State of one ``ml replay`` call: settings, the world, the event log, dbt and MLflow."""

    def __init__(
        self,
        settings: Settings,
        on_step: Callable[[dt.date, str], None] | None = None,
        on_day: Callable[[DayReport], None] | None = None,
    ):
        from ml import tracking

        self.settings = settings
        self.target = settings.dbt.target
        self.name = settings.model.name
        self.delay = dt.timedelta(days=settings.training.delay_days)
        self.landing_root = Path(settings.landing.root).resolve()
        self.target_path = tracking.dbt_target_path(settings).resolve()
        self.on_step = on_step or (lambda day, step: None)
        self.on_day = on_day or (lambda report: None)
        self.events = pd.DataFrame(columns=list(ev.EVENT_COLUMNS))
        self.world: Any = None
        self.dbt: DbtSession | None = None
        self.client: Any = None
        self.experiment_id = ""
        self._importance: dict[str, list[str]] = {}

    # -- warehouse and event log ---------------------------------------------------------------------
    def _warehouse(self, read_only: bool = False) -> Any:
        from ml.warehouse import open_warehouse

        return open_warehouse(self.settings, self.target, read_only=read_only)

    def load_events(self) -> None:
        from ml.warehouse import resolve_target

        target = resolve_target(self.settings, self.target)
        if target.type == "duckdb":
            path = Path(target.config.get("path", ""))
            path = path if path.is_absolute() else target.project_dir / path
            if not path.exists():  # a new warehouse: nothing recorded yet
                return
        with self._warehouse(read_only=True) as wh:
            self.events = ev.read_events(wh, self.name)

    def record(self, *events: ev.ModelEvent) -> None:
        with self._warehouse() as wh:
            ev.record(wh, events)
        rows = ev.events_frame(events)
        rows["details"] = [json.loads(v) for v in rows["details"]]
        known = set(self.events["event_id"])
        rows = rows.loc[~rows["event_id"].isin(known)]
        self.events = pd.concat([self.events, rows], ignore_index=True) if len(self.events) else rows.reset_index(drop=True)

    def day_events(self, day: dt.date) -> dict[str, dict[str, Any]]:
        rows = self.events.loc[self.events["event_date"] == day] if len(self.events) else self.events
        return {r["event"]: r for r in rows.to_dict("records")}

    def completed(self) -> tuple[dt.date | None, dict[str, Any] | None]:
        """(last completed business day, the bootstrap's day_completed details)."""
        if self.events.empty:
            return None, None
        done = self.events.loc[self.events["event"] == "day_completed"]
        if done.empty:
            return None, None
        boot = [d for d in done["details"] if d.get("phase") == BOOTSTRAP]
        return max(done["event_date"]), (boot[0] if boot else None)

    def last_training(self, before: dt.date) -> dt.date | None:
        """The business day of the latest training attempt before ``before`` (a trained or
        rejected event; the bootstrap counts)."""
        if self.events.empty:
            return None
        rows = self.events.loc[self.events["event"].isin(["trained", "rejected"]) & (self.events["event_date"] < before)]
        return max(rows["event_date"]) if len(rows) else None

    # -- checks ---------------------------------------------------------------------------------------
    def check_inputs(self, next_day: dt.date) -> None:
        """Refuse landing files or transactions of days after ``next_day`` (another run's data)."""
        for dataset, day in _landed_days(self.landing_root).items():
            if day > next_day:
                raise ReplayError(
                    f"the landing root {self.landing_root} already holds {dataset} of {day}, after the next "
                    f"day to replay ({next_day}); give the replay a landing root of its own (landing.root)"
                )
        with contextlib.suppress(DataNotReadyError), self._warehouse(read_only=True) as wh:
            table = self.settings.model.feature_table
            if wh.exists(table):
                latest = wh.scalar(f"select max(tx_date) from {table}")
                if latest is not None and pd.Timestamp(latest).date() > next_day:
                    raise ReplayError(
                        f"{table} already holds transactions of {pd.Timestamp(latest).date()}, after the next day "
                        f"to replay ({next_day}); give the replay a warehouse of its own (FRAUDOPS_DUCKDB_PATH)"
                    )

    # -- MLflow -------------------------------------------------------------------------------------------
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
            tags={"fraudops.command": "replay", "replay_day": day.isoformat(), "replay_phase": phase, "model_name": self.name},
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
    def land(self, first: dt.date, last: dt.date, report: DayReport) -> None:
        from ml.landing import write_landing

        self.on_step(report.day, "land")
        with _timed(report, "land"):
            result = write_landing(self.world, self.landing_root, first, last)
        report.transactions = result.transactions
        report.fraud_reports = result.fraud_reports

    def build(self, selector: str, report: DayReport, exclude: tuple[str, ...]) -> None:
        self.on_step(report.day, f"dbt build {selector}")
        with _timed(report, f"dbt_{selector}"):
            self.dbt.build(selector, exclude)

    def score_day(self, day: dt.date, report: DayReport) -> None:
        from ml.score import score

        done = self.day_events(day).get("scored")
        if done is not None:  # scored before an interruption
            report.scored_by = done["model_version"]
            report.scored = int(done["details"].get("rows", 0))
            report.alerts = int(done["details"].get("alerts", 0))
            return
        self.on_step(day, "ml score")
        with _timed(report, "score"):
            result = score(self.settings, start=day, end=day, target=self.target)
        report.scored_by, report.scored, report.alerts = result.model_version, result.rows_read, result.alerts
        self.record(
            ev.ModelEvent(
                day, "scored", self.name, result.model_version,
                f"scored {result.rows_read:,} transactions of {day} with the champion v{result.model_version}",
                {"rows": result.rows_read, "rows_added": result.rows_added, "alerts": result.alerts,
                 "alert_threshold": result.alert_threshold},
                report.run_id,
            )
        )

    def champion_version(self) -> str | None:
        from ml import registry

        champion = registry.version_by_alias(self.client, self.name, registry.CHAMPION)
        return str(champion.version) if champion is not None else None

    def watched_features(self, version: str) -> list[str]:
        """``retraining.drift_features``, else the version's most important features."""
        retraining = self.settings.retraining
        if retraining.drift_features:
            return list(retraining.drift_features)
        if version not in self._importance:
            self._importance[version] = self._important_features(version, retraining.drift_top_features)
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
        ranked = importance.loc[importance["feature"].isin(features) & (importance["importance_mean"] > 0)]
        ranked = ranked.sort_values("importance_mean", ascending=False)["feature"].head(top).tolist()
        return ranked or features

    def monitor(self, day: dt.date, version: str, report: DayReport) -> list[Alert]:
        """Read the champion's monitoring rows and return the alerts that hold on ``day``."""
        retraining = self.settings.retraining
        watched = self.watched_features(version)
        with self._warehouse(read_only=True) as wh:
            performance = (
                wh.read(PERFORMANCE_TABLE, ["tx_date", "model_name", "model_version", "average_precision"])
                if wh.exists(PERFORMANCE_TABLE)
                else pd.DataFrame(columns=["tx_date", "model_name", "model_version", "average_precision"])
            )
            lookback = day - dt.timedelta(days=retraining.drift_days - 1)
            drift = (
                wh.read(DRIFT_TABLE, ["tx_date", "model_name", "model_version", "feature", "psi"], "tx_date", lookback, day)
                if wh.exists(DRIFT_TABLE)
                else pd.DataFrame(columns=["tx_date", "model_name", "model_version", "feature", "psi"])
            )
        for frame in (performance, drift):
            frame["tx_date"] = [pd.Timestamp(v).date() for v in frame["tx_date"]]
        matured = performance.loc[(performance["tx_date"] == day - self.delay) & (performance["model_name"] == self.name)]
        if len(matured) and matured["average_precision"].notna().any():
            report.matured_day = day - self.delay
            report.matured_average_precision = float(matured["average_precision"].dropna().iloc[-1])
        mine = (drift["model_name"] == self.name) & (drift["model_version"].astype(str) == version)
        drift = drift.loc[mine]
        threshold = retraining.psi_threshold
        if threshold is not None:
            today = drift.loc[(drift["tx_date"] == day) & drift["feature"].isin(watched) & (drift["psi"] >= threshold)]
            report.drifted_features = sorted(today["feature"])
        champion_rows = performance.loc[
            (performance["model_name"] == self.name) & (performance["model_version"].astype(str) == version)
        ]
        alerts = [
            drift_alert(drift, day, psi_threshold=threshold, days=retraining.drift_days,
                        min_features=retraining.drift_min_features, features=watched),
            performance_alert(champion_rows, min_average_precision=retraining.min_average_precision,
                              days=retraining.performance_days),
        ]
        return [a for a in alerts if a is not None]

    def retrain(self, day: dt.date, triggers: list[str], report: DayReport) -> None:
        """Train a challenger on the latest mature window, validate it, promote it if it passes.

        Steps already recorded for ``day`` (an interrupted run) are not repeated.
        """
        from ml import registry, train

        reason = "; ".join(triggers)
        test_end = day - self.delay
        done = self.day_events(day)
        version: str | None = None
        if "trained" in done:
            version = str(done["trained"]["model_version"])
        elif "rejected" in done:  # training itself failed before the interruption
            report.decisions.append(f"rejected: {done['rejected']['reason']}")
            return
        else:
            adopted = self._interrupted_challenger(test_end)
            self.on_step(day, "ml train")
            try:
                # stderr: MLflow prints "Registered model ... already exists" lines past its log level
                with _timed(report, "train"), contextlib.redirect_stderr(io.StringIO()):
                    if adopted is None:
                        result = train.train(self.settings, test_end=test_end, target=self.target, dbt_target_path=self.target_path)
            except DataNotReadyError as exc:
                self.record(ev.ModelEvent(day, "rejected", self.name, None, f"{reason}; training failed: {exc}",
                                          {"stage": "train", "triggers": triggers, "test_end": test_end}, report.run_id))
                report.decisions.append(f"training failed: {exc}")
                return
            if adopted is not None:
                version, run_id, details = adopted
            else:
                version, run_id = result.model_version, result.run_id
                details = {"candidate": result.best_candidate, "windows": result.windows.as_dict(),
                           "train_rows": result.train_rows, "test_rows": result.test_rows,
                           "test_metrics": {k: result.best.metrics.get(k) for k in ("roc_auc", "average_precision", f"card_precision_at_{self.settings.model.top_k_cards}")}}
            self.record(ev.ModelEvent(day, "trained", self.name, version, reason, {"triggers": triggers, **details}, run_id))
        report.decisions.append(f"trained v{version} ({reason})")

        if "validated" not in done and "rejected" not in done:
            self.on_step(day, "ml validate")
            try:
                with _timed(report, "validate"):
                    verdict = registry.validate(self.settings, test_end=test_end, target=self.target)
            except DataNotReadyError as exc:
                self.record(ev.ModelEvent(day, "rejected", self.name, version, f"validation could not run: {exc}",
                                          {"stage": "validate", "triggers": triggers}, report.run_id))
                report.decisions.append(f"rejected v{version}: validation could not run")
                return
            details = {"champion_version": verdict.champion_version, "window": verdict.windows.as_dict(),
                       "rules": [{"name": r.name, "value": r.value, "threshold": r.threshold, "passed": r.passed} for r in verdict.rules],
                       "challenger_metrics": verdict.challenger_metrics, "champion_metrics": verdict.champion_metrics}
            kind = "validated" if verdict.passed else "rejected"
            self.record(ev.ModelEvent(day, kind, self.name, version, verdict.summary(), details, verdict.run_id))
            done = self.day_events(day)
        if "rejected" in done:
            report.decisions.append(f"rejected v{version}")
            return
        report.decisions.append(f"validated v{version}")

        if "promoted" not in done:
            replaced = self.champion_version()
            if replaced == version:  # promoted before the interruption
                mv = self.client.get_model_version(self.name, version)
                run_id = (mv.tags or {}).get("promotion_run_id")
                replaced = (mv.tags or {}).get("replaced_champion")
            else:
                self.on_step(day, "ml promote")
                with _timed(report, "promote"):
                    change = registry.promote(self.settings, version=version, reason=f"ml replay {day}: {reason}", target=self.target)
                run_id, replaced = change.run_id, change.replaced_version
            self.record(ev.ModelEvent(day, "promoted", self.name, version, f"passed validation; {reason}",
                                      {"champion_version": version, "replaced_version": replaced if replaced != "none" else None},
                                      run_id))
        report.decisions.append(f"promoted v{version}")

    def _interrupted_challenger(self, test_end: dt.date) -> tuple[str, str, dict[str, Any]] | None:
        """The @challenger that a run interrupted after training registered for this window, if any."""
        from ml import registry

        challenger = registry.version_by_alias(self.client, self.name, registry.CHALLENGER)
        if challenger is None:
            return None
        tags = dict(challenger.tags or {})
        recorded = set(self.events.loc[self.events["event"] == "trained", "model_version"].astype(str)) if len(self.events) else set()
        if tags.get("test_end") != test_end.isoformat() or "validation_status" in tags or str(challenger.version) in recorded:
            return None
        return str(challenger.version), tags.get("run_id", challenger.run_id), {"resumed": "registered before an interruption"}

    def complete(self, report: DayReport, extra: dict[str, Any] | None = None) -> None:
        report.champion_version = self.champion_version()
        details = {**report.summary(), **(extra or {})}
        self.record(ev.ModelEvent(report.day, "day_completed", self.name, report.champion_version,
                                  f"{report.phase} {report.day} completed", details, report.run_id))

    # -- a whole day ----------------------------------------------------------------------------------
    def run_day(self, day: dt.date) -> DayReport:
        report = DayReport(day=day, phase="day")
        report.run_id = self.start_day_run(day, "day")
        clock = time.perf_counter()
        try:
            self.land(day, day, report)
            self.build("medallion", report, DAILY_EXCLUDED_RESOURCE_TYPES)
            self.score_day(day, report)
            self.build("downstream", report, ("unit_test",))
            self.on_step(day, "policies")
            self.policies(day, report)
            report.seconds["total"] = time.perf_counter() - clock
            self.complete(report)
        except BaseException as exc:
            self.abort_day_run(report, exc)
            raise
        self.finish_day_run(report)
        return report

    def policies(self, day: dt.date, report: DayReport) -> None:
        retraining = self.settings.retraining
        version = report.scored_by or self.champion_version()
        holding = self.monitor(day, version, report)
        report.monitoring_alerts = [a.event for a in holding]
        last = self.last_training(before=day)
        scheduled = scheduled_due(day, last, retraining.every_days)
        cooldown_end = cooldown_until(last, retraining.cooldown_days)
        cooling = cooldown_end is not None and day <= cooldown_end
        yesterday = self.day_events(day - dt.timedelta(days=1)).get("day_completed")
        held_yesterday = set((yesterday or {}).get("details", {}).get("alerts_holding", []))
        triggers = []
        if scheduled:
            since = f"{(day - last).days} days since the last training" if last else "no training yet"
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
                self.record(ev.ModelEvent(day, alert.event, self.name, version, alert.reason,
                                          {**alert.details, "action": action}, report.run_id))
        if triggers or "trained" in already or "rejected" in already:
            self.retrain(day, triggers or ["resumed retraining"], report)

    def bootstrap(self, plan_: ReplayPlan) -> DayReport:
        day = plan_.start - dt.timedelta(days=1)
        report = DayReport(day=day, phase=BOOTSTRAP)
        report.run_id = self.start_day_run(day, BOOTSTRAP)
        clock = time.perf_counter()
        try:
            self.land(plan_.warmup_start, day, report)
            self.build("medallion", report, BOOTSTRAP_EXCLUDED_RESOURCE_TYPES)
            self.retrain(day, [f"bootstrap: first champion, trained on the warm-up {plan_.warmup_start}..{day}"], report)
            champion = self.champion_version()
            if champion is None:
                rejected = self.day_events(day).get("rejected")
                why = rejected["reason"] if rejected is not None else "no champion after the bootstrap"
                raise ReplayError(
                    f"the bootstrap model was not promoted ({why}); lower the validation.min_* settings or "
                    "lengthen replay.warmup_days, then run ml replay again"
                )
            report.seconds["total"] = time.perf_counter() - clock
            self.complete(report, {"world": world_fingerprint(self.settings),
                                   "warmup": [plan_.warmup_start.isoformat(), day.isoformat()],
                                   "simulation": self.settings.simulation.model_dump(mode="json")})
        except BaseException as exc:
            self.abort_day_run(report, exc)
            raise
        self.finish_day_run(report)
        return report


class _timed:
    """Adds the block's wall time to ``report.seconds[name]``."""

    def __init__(self, report: DayReport, name: str):
        self.report, self.name = report, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.report.seconds[self.name] = self.report.seconds.get(self.name, 0.0) + time.perf_counter() - self.started


def replay(
    settings: Settings,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    target: str | None = None,
    on_step: Callable[[dt.date, str], None] | None = None,
    on_day: Callable[[DayReport], None] | None = None,
) -> ReplayResult:
    """Replay ``start..end`` (defaults: settings.replay), bootstrapping a champion first if needed,
    or continue an interrupted replay; ``on_step(day, step)`` and ``on_day(report)`` report progress."""
    from ml import tracking
    from ml.mlflow_uris import settings_for_target
    from ml.simulate import simulate
    from ml.warehouse import prepare_target, resolve_target

    clock = time.perf_counter()
    settings = settings_for_target(settings, target)
    plan_ = plan(settings, start, end)
    replayer = Replayer(settings, on_step, on_day)
    replayer.load_events()
    last_done, boot = replayer.completed()
    if boot is not None and boot.get("world") != world_fingerprint(settings):
        raise ReplayError(
            "this warehouse holds the replay of another world (the simulation settings differ from those of "
            f"its bootstrap on {last_done and boot.get('warmup', ['', ''])[1]}); use the same settings, or a new "
            "warehouse, landing root and MLflow store"
        )
    if last_done is not None and boot is not None and plan_.start > last_done + dt.timedelta(days=1):
        raise ReplayError(
            f"the replay is complete up to {last_done}; continue from {last_done + dt.timedelta(days=1)} "
            "(--start on or before it) so that no day is skipped"
        )
    next_day = plan_.start if boot is None else max(plan_.start, last_done + dt.timedelta(days=1))
    days = [next_day + dt.timedelta(days=i) for i in range((plan_.end - next_day).days + 1)]
    result = ReplayResult(plan_.start, plan_.end, [], resumed_after=last_done if boot is not None else None)
    if boot is not None and not days:
        result.seconds = time.perf_counter() - clock
        return result

    replayer.check_inputs(next_day)
    duckdb = resolve_target(settings, settings.dbt.target).type == "duckdb"
    prepare_target(settings, settings.dbt.target)  # the DuckDB file's folder
    use_worker = settings.replay.dbt_worker and duckdb
    with _quiet():
        replayer.experiment_id = tracking.configure(settings)
        from mlflow import MlflowClient

        replayer.client = MlflowClient()
        replayer.world = simulate(settings.simulation)
        with DbtSession(settings, settings.dbt.target, replayer.target_path, replayer.landing_root, use_worker) as dbt:
            replayer.dbt = dbt
            if boot is None:
                result.bootstrap = replayer.bootstrap(plan_)
                replayer.on_day(result.bootstrap)
            for day in days:
                report = replayer.run_day(day)
                result.days.append(report)
                replayer.on_day(report)
    result.seconds = time.perf_counter() - clock
    return result


__all__ = [
    "Alert",
    "DayReport",
    "DbtSession",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "cooldown_until",
    "drift_alert",
    "performance_alert",
    "plan",
    "replay",
    "scheduled_due",
    "world_fingerprint",
]
