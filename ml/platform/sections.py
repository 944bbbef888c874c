"""The sections of the settings (ml/platform/settings.py assembles and loads them)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml.platform.features import EXTRA_FEATURES, FEATURES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DbtSettings(_Section):
    project_dir: Path = Path(".")
    profiles_dir: Path = Path(".")
    # null: the profile's default target, i.e. $FRAUDOPS_TARGET, else ``local`` (profiles.yml):
    # one environment variable names the target for dbt and ml alike.
    target: str | None = None


class WarehouseSettings(_Section):
    """ml's own connection to the target's warehouse (dbt's connection comes from profiles.yml)."""

    # DuckDB's buffer pool in ml's processes (train, score, validate, report, serve): DuckDB
    # keeps the blocks a query scanned cached up to its limit, and a window of the feature table
    # scans blocks of every day (the table is ordered by card and terminal, not by day). With the
    # profile's 3GB, `ml train` on the 10x world cached 1.2 GB for a 137 MB frame and peaked at
    # 2.5 GB (4.7x its 1x peak; bench/bench_scale.py). ml's queries read windows and anti-join
    # keys: past the limit DuckDB spills them to the profile's temp_directory (a sort of 17.7M
    # rows and an anti-join of 3M keys ran at 256MB). null: the profile's memory_limit. A process
    # that runs dbt on the same file in-process shares dbt's (DuckDB opens a file once per process).
    duckdb_memory_limit: str | None = "256MB"


class FeatureSettings(_Section):
    """Feature semantics of the gold table (the Fraud Detection Handbook, chapter 3.4): the dbt
    vars of the same names come from here, and so does the online feature state."""

    customer_windows_days: list[int] = Field(default_factory=lambda: [1, 7, 30])
    terminal_windows_days: list[int] = Field(default_factory=lambda: [1, 7, 30])
    # A terminal's frauds are known this many days late: its risk windows end this far back.
    terminal_delay_days: int = Field(7, ge=0)


#: Kinds of drift ``ml simulate`` can inject (ml/drift.py), with the meaning of ``strength`` and
#: its default: a count per day, or a factor.
DRIFT_KINDS: dict[str, tuple[str, float]] = {
    "card_testing": ("cards tested per day (new fraud scenario 4)", 5),
    "terminal_compromise_rate": ("terminals compromised per day (instead of 2)", 6),
    "genuine_amount_shift": ("factor on genuine transactions' amounts", 1.5),
    "genuine_activity_shift": ("factor on customers' transactions per day", 1.5),
}
DriftKind = Literal[
    "card_testing", "terminal_compromise_rate", "genuine_amount_shift", "genuine_activity_shift"
]
_DRIFT_COUNTS = ("card_testing", "terminal_compromise_rate")
MAX_DRIFT_FACTOR = 10.0


class DriftEvent(_Section):
    """One change of the simulated world from ``start`` to ``end`` (inclusive; default: the end of
    the horizon). ``strength`` is a whole count per day or a factor, by ``kind`` (see DRIFT_KINDS;
    default: the kind's default)."""

    kind: DriftKind
    start: dt.date
    end: dt.date | None = None
    strength: float | None = None

    @model_validator(mode="after")
    def _strength_fits_the_kind(self) -> DriftEvent:
        if self.strength is None:
            self.strength = float(DRIFT_KINDS[self.kind][1])
        if self.kind in _DRIFT_COUNTS:
            if self.strength < 0 or self.strength != int(self.strength):
                raise ValueError(
                    f"{self.kind} strength is a whole number >= 0, got {self.strength:g}"
                )
        elif not 0 < self.strength <= MAX_DRIFT_FACTOR:
            raise ValueError(
                f"{self.kind} strength is a factor in (0, {MAX_DRIFT_FACTOR:g}], got {self.strength:g}"
            )
        if self.end is not None and self.end < self.start:
            raise ValueError(f"drift end {self.end} is before its start {self.start}")
        return self


class SimulationSettings(_Section):
    customers: int = Field(5000, gt=0)
    terminals: int = Field(10000, gt=0)
    days: int = Field(183, gt=0)
    start: dt.date = dt.date(2018, 4, 1)
    seed: int = 0
    radius: float = Field(5.0, gt=0)
    label_delay_days: int = Field(7, ge=0)
    # Terminals and cards compromised a day (fraud scenarios 2 and 3): "fixed" = the handbook's
    # 2 and 3 whatever the population; "population" = those counts scaled by terminals / 10,000
    # and customers / 5,000 (rounded, at least 1), so a larger world keeps the default world's
    # fraud mix (ml/simulate.py compromised_per_day).
    compromise_scaling: Literal["fixed", "population"] = "fixed"
    # Drift events (ml/drift.py): a list, or a single event; none = the handbook's stationary world.
    drift: list[DriftEvent] = Field(default_factory=list)

    @field_validator("drift", mode="before")
    @classmethod
    def _one_event_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict | DriftEvent) else value

    @model_validator(mode="after")
    def _drift_inside_the_horizon(self) -> SimulationSettings:
        end = self.start + dt.timedelta(days=self.days - 1)
        for event in self.drift:
            if not self.start <= event.start <= end:
                raise ValueError(
                    f"drift {event.kind} starts on {event.start}, outside the simulated days "
                    f"{self.start}..{end}"
                )
        return self


def _landing_root_default() -> str:
    # the landing root dbt reads (dbt_project.yml var landing_root): one setting for both halves
    return os.environ.get("FRAUDOPS_LANDING_ROOT", "data/landing")


class LandingSettings(_Section):
    # Root of the landing zone; default: $FRAUDOPS_LANDING_ROOT, else data/landing.
    root: str = Field(default_factory=_landing_root_default)
    # Landing contract (docs/data-contract.md): amounts above this are quarantined as absurd,
    # timestamps before min_event_date or more than max_days_ahead_of_load days after the build
    # that loads them as timestamp_out_of_range.
    max_tx_amount: float = Field(100_000.0, gt=0)
    min_event_date: dt.date = dt.date(2000, 1, 1)
    max_days_ahead_of_load: int = Field(1, ge=0)


class MlflowSettings(_Section):
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    registry_uri: str | None = None
    experiment: str = "fraudops"
    artifact_location: str | None = "mlruns/artifacts"


class ModelSettings(_Section):
    name: str = "fraud_detector"
    features: list[str] = Field(default_factory=lambda: [*FEATURES, *EXTRA_FEATURES])
    label: str = "tx_fraud"
    feature_table: str = "gold.transaction_features"
    alert_threshold: float = Field(0.5, ge=0, le=1)
    # Card Precision@k: the k highest-scored cards per day (dbt var card_precision_k).
    top_k_cards: int = Field(100, gt=0)
    # Investigators' daily alert queue: the k highest-scored transactions per day (dbt var alert_top_k).
    alert_top_k: int = Field(100, gt=0)


class TrainingSettings(_Section):
    """Windows, candidates and reference distributions of ``ml train`` / ``ml evaluate``."""

    train_days: int = Field(7, gt=0)
    delay_days: int = Field(7, ge=0)
    test_days: int = Field(7, gt=0)
    # Last day whose labels may be used; default: last mature day of the feature table.
    test_end: dt.date | None = None
    candidates: list[str] = Field(
        default_factory=lambda: ["logistic_regression", "hist_gradient_boosting"]
    )
    # Per-candidate overrides of the estimator's parameters (see ml/models.py), e.g.
    # {"hist_gradient_boosting": {"learning_rate": 0.05}}.
    hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    random_state: int = 0
    # Threads for fitting/predicting (OpenMP, BLAS); null = the libraries' default (all cores).
    n_threads: int | None = Field(1, gt=0)
    # Cards removed from test sets as already known compromised (ml/data.py evaluation_set):
    # "reported" = frauds reported before the test day (point in time); "delay" = the handbook's
    # code, frauds at least delay_days + 1 days old.
    known_compromised: Literal["reported", "delay"] = "reported"
    # Prequential protocol of `ml evaluate`: folds, each shifted back by test_days.
    prequential_folds: int = Field(4, gt=0)
    # Permutation importance: rows sampled from the test set, and repeats.
    importance_max_rows: int = Field(20000, gt=0)
    importance_repeats: int = Field(3, gt=0)
    # Training reference distribution for drift: quantile bins and quantile-sample size.
    reference_bins: int = Field(10, ge=2)
    reference_quantiles: int = Field(1000, ge=10)


class ValidationSettings(_Section):
    """Rules of ``ml validate`` (ml/registry.py): minimums for the challenger, and how much worse
    than the champion it may be. Card Precision is at ``model.top_k_cards`` (100 by default)."""

    # 0.4: 50x the handbook world's fraud rate (0.8%). The default world's candidates reach
    # 0.64-0.79; the CI-size world (Makefile CI_SIM: ~7 frauds a day, ~50 in a 7-day test window)
    # 0.48, which 0.5 rejected by noise alone (measured with ml run on both).
    min_average_precision: float = 0.4
    min_roc_auc: float = 0.8
    # A fraction of the best Card Precision@k the test window allows: CP@k <= frauded cards a day
    # / k, so with 7 frauded cards a day even a perfect model has CP@100 0.07 (ml/lifecycle/validate.py).
    min_card_precision_at_100: float = 0.15
    # A challenger may be at most this much worse than the champion (absolute).
    max_regression: float = Field(0.02, ge=0)
    # Last day of the validation test window; default: the last mature day of the feature table
    # (the window is training.test_days long, compromised cards excluded as in ml/data.py).
    test_end: dt.date | None = None


class ScoringSettings(_Section):
    """``ml score`` (alerts use ``model.alert_threshold``; its tables: ml/platform/tables.py)."""

    # Threads predicting (row chunks, one OpenMP thread each); null = all cores.
    n_threads: int | None = Field(None, gt=0)
    # Rows `ml score` reads, scores and writes at a time: whole days, as many as fit (a day with
    # more rows is read alone); each such chunk is one write transaction. null = everything in
    # one read and one transaction.
    chunk_rows: int | None = Field(1_000_000, gt=0)


class DeploymentSettings(_Section):
    """One DataRobot deployment id served by fraudops: a registered model and its alias."""

    model: str = "fraud_detector"
    alias: str = "champion"


class DataRobotSettings(_Section):
    """The DataRobot-compatible Prediction API (ml/serving/datarobot.py): an existing client
    changes only its base URL. ``deployments`` maps a deployment id to a model and alias; with
    ``token`` set, requests need ``Authorization: Bearer <token>`` (else 401)."""

    deployments: dict[str, DeploymentSettings] = Field(default_factory=dict)
    token: str | None = None
    # DataRobot's real-time limit (bytes of the request body, and of it decompressed)
    max_request_bytes: int = Field(50 * 1024 * 1024, gt=0)
    # DataRobot's limit of rows per actuals/fromJSON request
    max_actuals_rows: int = Field(10_000, gt=0)


class ReplaySettings(_Section):
    """``ml replay`` (ml/replay.py): operate the system day by day over the simulated world."""

    # First and last replayed day; defaults: the day after the warm-up, the last simulated day.
    start: dt.date | None = None
    end: dt.date | None = None
    # Days of history landed in one go before the first replayed day (the bootstrap builds,
    # trains, validates and promotes the first champion on them). They must hold a training
    # window (training.train_days + delay_days + test_days) plus the label delay, and start 30
    # days after the simulation, or the 30-day features of the training reference are still
    # filling up and look drifted later on.
    warmup_days: int = Field(60, gt=0)
    # On DuckDB, run dbt in one worker process that parses the project once (false: a dbt
    # subprocess per build, which imports dbt and checks the parse every time; other targets
    # always do that).
    dbt_worker: bool = True
    # The data tests of each day's builds (dbt var data_tests_scope): 'latest_load' tests the
    # days the latest load can have changed, so a day costs the same in year three as in month
    # one; 'all' tests every row, as CI and full builds do (schedule it weekly:
    # `ml dbt build --selector medallion`; docs/operations.md).
    data_tests_scope: Literal["all", "latest_load"] = "latest_load"


class RetrainingSettings(_Section):
    """When ``ml replay`` trains a challenger (then validates it and promotes it if it passes).

    Scheduled: every ``every_days`` days since the last training. Monitoring-triggered, at most
    once per ``cooldown_days``: a ``drift_alert`` when at least ``drift_min_features`` watched
    features have PSI >= ``psi_threshold`` (gold.feature_drift_daily) on each of the champion's
    last ``drift_days`` scored days; a ``performance_alert`` when the champion's average precision
    on matured labels (gold.model_performance_daily) is below ``min_average_precision`` on each
    of its last ``performance_days`` matured days. Only days scored by the current champion
    count: a new champion starts with a clean record.
    """

    # 0 = no scheduled retraining.
    every_days: int = Field(7, ge=0)
    # null = no drift trigger.
    psi_threshold: float | None = Field(0.25, ge=0)
    drift_days: int = Field(3, gt=0)
    drift_min_features: int = Field(1, gt=0)
    # Watched features; empty = the champion's `drift_top_features` most important features
    # (permutation importance logged by ml train), all model features if it has none.
    drift_features: list[str] = Field(default_factory=list)
    drift_top_features: int = Field(5, gt=0)
    # null = no performance trigger.
    min_average_precision: float | None = Field(None, ge=0)
    performance_days: int = Field(3, gt=0)
    # Days after a retraining during which monitoring alerts do not retrain again.
    cooldown_days: int = Field(7, ge=0)


class OperateSettings(_Section):
    """``ml operate`` (ml/operations/operate.py): one business day on real data."""

    # The report written after each operated day and logged to its MLflow run; null: none. On
    # Databricks the job points it at a Unity Catalog volume (resources/fraudops_job.yml).
    report: str | None = "reports/fraudops-report.html"


class ServingSettings(_Section):
    """``ml serve`` (ml/serving/): real-time scoring over HTTP with the online feature state."""

    host: str = "127.0.0.1"
    # Default: $DATABRICKS_APP_PORT (set by Databricks Apps), else 5000.
    port: int = Field(
        default_factory=lambda: int(os.environ.get("DATABRICKS_APP_PORT", "5000")), gt=0, lt=65536
    )
    # How often the server asks the registry where `champion` points (a move loads the new
    # version in the background and swaps it in between requests).
    poll_seconds: float = Field(10.0, gt=0)
    # The inference log (parquet, like Databricks inference tables; dbt source `serving`).
    # Default: $FRAUDOPS_SERVING_LOG_DIR, else data/serving (the dbt var serving_log_root).
    log_dir: str = Field(
        default_factory=lambda: os.environ.get("FRAUDOPS_SERVING_LOG_DIR", "data/serving")
    )
    flush_seconds: float = Field(1.0, gt=0)
    # Request limits: bytes of a body, rows of a request.
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_rows: int = Field(10_000, gt=0)
    # Where the online state bootstraps from: the target's warehouse engine ("target": DuckDB,
    # a Spark session), or Unity Catalog through a SQL warehouse ("databricks_sql": a
    # Databricks App, which has no Spark session; docs/deploy-databricks.md, "Real-time").
    bootstrap: Literal["target", "databricks_sql"] = "target"
