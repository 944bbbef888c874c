"""The same dbt project on Spark and on DuckDB: same nodes green, same tables, same features.

A small simulated landing zone is built with dbt on the ``local`` (DuckDB) and the ``spark``
(dbt-spark, local PySpark, parquet) targets, each in its own tmp folder: a first ``dbt build``
of the SQL medallion (models, data tests, unit tests), then more landed days and an incremental
``dbt run``. Row counts of every layer, the quarantine by reason, and a checksum of
``gold.transaction_features`` must agree. The two targets build at the same time (their
warehouses are separate); the first build and the incremental run on Spark share one dbt process
(one JVM start, one parse; tests/support/spark.py:SparkDbtWorker), with more dbt threads than the
profile's 1 (SPARK_DBT_THREADS: the DAG, so what is built and tested, is the same).

The end-to-end test then runs the ``ml`` half on Spark (train -> promote -> score, predictions
written as a Spark table) and the downstream SQL models, and checks the alert queue against
DuckDB fed with the same scoring tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from support.spark import (
    REPO_ROOT,
    SPARK_DBT_THREADS,
    SparkDbtWorker,
    skip_without_spark,
    spark_env,
)

from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.settings import SimulationSettings
from ml.platform.warehouse import DuckDBWarehouse, Target
from ml.world.landing import simulate_landing

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SIMULATION = SimulationSettings(customers=100, terminals=200, days=42, seed=11)
FIRST_BUILD_TO = SIMULATION.start + dt.timedelta(days=33)
LAYERS = [
    "bronze.stg_landing__transactions",
    "bronze.stg_landing__fraud_reports",
    "silver.int_transactions_deduplicated",
    "silver.int_fraud_reports_deduplicated",
    "gold.landing_quarantine",
    "gold.landing_exact_duplicates",
    "gold.transaction_features",
]
SCORING_TABLES = [
    "scoring.predictions",
    "scoring.prediction_explanations",
    "scoring.feature_reference",
    "scoring.feature_reference_sample",
]


class Built:
    """Both warehouses of one landing zone, and how to read their tables."""

    def __init__(self, base: Path):
        self.base = base
        self.landing = base / "landing"
        self.duckdb_path = base / "local" / "wh.duckdb"
        self.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        self.spark_env = spark_env(base, self.landing)
        self.results: dict[str, list[DbtResult]] = {"local": [], "spark": []}
        self.spark_worker: SparkDbtWorker | None = None  # set: spark commands run in it (one JVM)

    def env(self, target: str) -> dict[str, str]:
        if target == "spark":
            return self.spark_env
        return {
            "FRAUDOPS_DUCKDB_PATH": str(self.duckdb_path),
            "FRAUDOPS_LANDING_ROOT": str(self.landing),
            "FRAUDOPS_SERVING_LOG_DIR": str(self.base / "serving_local"),
        }

    def dbt(self, target: str, *args: str) -> DbtResult:
        if target == "spark":
            args = (*args, "--threads", SPARK_DBT_THREADS)
        if target == "spark" and self.spark_worker is not None:
            returncode, stdout, run_results = self.spark_worker.invoke(*args)
            result = DbtResult(
                args=list(args), returncode=returncode, stdout=stdout, run_results=run_results
            )
        else:
            result = run_dbt(
                [*args, "--log-path", str(self.base / f"logs_{target}")],
                project_dir=REPO_ROOT,
                target=target,
                target_path=self.base / f"target_{target}",
                env=self.env(target),
                check=False,
            )
        self.results[target].append(result)
        assert result.returncode == 0, (
            f"dbt {' '.join(args)} on {target} failed:\n{result.stdout[-4000:]}"
        )
        return result

    def spark_table(self, relation: str) -> pd.DataFrame:
        """A table of the spark target, read from its parquet files (no second Spark session)."""
        schema, table = relation.split(".")
        folder = Path(self.spark_env["FRAUDOPS_SPARK_DIR"]) / "warehouse" / f"{schema}.db" / table
        return duckdb.sql(f"select * from read_parquet('{folder}/*.parquet')").df()

    def local_table(self, relation: str) -> pd.DataFrame:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
            return con.sql(f"select * from {relation}").df()


def _both_build(built: Built, *args: str) -> None:
    """The same dbt command on both targets at once (separate warehouses, same landing files);
    returns when both have finished, raising if either failed."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(built.dbt, target, *args) for target in ("local", "spark")]
        for future in futures:
            future.result()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Landed days 1..34 built (dbt build), then days 35..42 landed and run incrementally."""
    skip_without_spark()
    built = Built(tmp_path_factory.mktemp("conformance"))
    simulate_landing(SIMULATION, built.landing, to_day=FIRST_BUILD_TO)
    # one dbt process (one JVM, one parse) for both spark commands; closed before `ml` opens
    # the metastore (test_ml_trains_...)
    with SparkDbtWorker(
        built.spark_env, built.base / "target_spark", built.base / "logs_spark"
    ) as worker:
        built.spark_worker = worker
        try:
            _both_build(built, "build", "--selector", "medallion_sql")
            # both builds have finished reading the landing zone before the later days land
            simulate_landing(
                SIMULATION, built.landing, from_day=FIRST_BUILD_TO + dt.timedelta(days=1)
            )
            _both_build(built, "run", "--selector", "medallion_sql")
        finally:
            built.spark_worker = None
    return built


def _statuses(result: DbtResult) -> dict[str, str]:
    return {unique_id: node["status"] for unique_id, node in result.nodes.items()}


# Floats are compared on a 1e-6 grid shifted off round numbers: averages of cent amounts are
# often exact halves of the last kept digit (e.g. 79.2459375), where a one-ulp difference from
# another summation order would flip plain rounding; no such value sits on the shifted boundary.
GRID = 1e6
GRID_OFFSET = 0.123456789


def checksum(frame: pd.DataFrame, key: str = "transaction_id") -> str:
    """sha256 of the rows sorted by ``key``: floats on a 1e-6 grid, timestamps as ISO text."""
    canonical = frame.sort_values(key).reset_index(drop=True).copy()
    for column in canonical.columns:
        values = canonical[column]
        if pd.api.types.is_float_dtype(values):
            grid = np.floor(values.to_numpy() * GRID + 0.5 + GRID_OFFSET)
            canonical[column] = ["" if np.isnan(v) else f"{v:.0f}" for v in grid]
        elif pd.api.types.is_datetime64_any_dtype(values):
            canonical[column] = values.dt.strftime("%Y-%m-%d %H:%M:%S.%f").fillna("")
        else:
            canonical[column] = values.map(lambda v: "" if pd.isna(v) else str(v))
    text = canonical.to_csv(index=False, header=True, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def test_every_sql_model_data_test_and_unit_test_passes_on_both_targets(built: Built) -> None:
    # given the first (full) build of each target, then the incremental run
    local, spark = built.results["local"], built.results["spark"]
    # then the same nodes ran, and every one of them passed, on both
    for first, second in ((local[0], spark[0]), (local[1], spark[1])):
        assert _statuses(first) == _statuses(second)
        assert set(_statuses(second).values()) <= {"pass", "success", "no-op"}
    kinds = {unique_id.split(".")[0] for unique_id in _statuses(spark[0])}
    assert {"model", "test", "unit_test", "seed"} <= kinds


def test_every_layer_has_the_same_rows_on_both_targets(built: Built) -> None:
    counts = {
        relation: (len(built.local_table(relation)), len(built.spark_table(relation)))
        for relation in LAYERS
    }
    assert all(local == spark for local, spark in counts.values()), counts
    # and the incremental run did add the later days to bronze and gold
    features = built.spark_table("gold.transaction_features")
    assert pd.to_datetime(features["tx_date"]).max().date() == SIMULATION.start + dt.timedelta(
        days=SIMULATION.days - 1
    )
    quarantine = {
        target: table.groupby(["feed", "reason"]).size().to_dict()
        for target, table in (
            ("local", built.local_table("gold.landing_quarantine")),
            ("spark", built.spark_table("gold.landing_quarantine")),
        )
    }
    assert quarantine["local"] == quarantine["spark"]


def test_transaction_features_checksum_is_the_same_on_both_targets(built: Built) -> None:
    local = built.local_table("gold.transaction_features")
    spark = built.spark_table("gold.transaction_features")
    assert list(spark.columns) == list(local.columns)
    assert len(local) > 1000 and local["tx_fraud"].sum() > 0
    # values first (a readable diff if they differ), then the checksum of the whole table
    pd.testing.assert_frame_equal(
        spark.sort_values("transaction_id").reset_index(drop=True),
        local.sort_values("transaction_id").reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )
    assert checksum(spark) == checksum(local)


def _ml(built: Built, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **built.spark_env,
        "FRAUDOPS_SETTINGS_FILE": str(built.base / "no-settings.yaml"),
        "FRAUDOPS__DBT__PROJECT_DIR": str(REPO_ROOT),
        "FRAUDOPS__DBT__PROFILES_DIR": str(REPO_ROOT),
        "FRAUDOPS__MLFLOW__TRACKING_URI": f"sqlite:///{built.base / 'mlflow.db'}",
        "FRAUDOPS__MLFLOW__ARTIFACT_LOCATION": str(built.base / "mlartifacts"),
        "DBT_TARGET_PATH": str(built.base / "target_spark"),
    }
    env.pop("FRAUDOPS_TARGET", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from ml.cli import app; app()", *args],
        cwd=built.base,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, (
        f"ml {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def test_ml_trains_and_scores_on_spark_and_the_downstream_models_build(built: Built) -> None:
    # given the medallion built on Spark, when ml trains, promotes and scores on the spark target
    _ml(
        built,
        "train",
        "--target",
        "spark",
        "--train-days",
        "14",
        "--candidate",
        "logistic_regression",
    )
    _ml(built, "promote", "--target", "spark", "--force", "--reason", "spark end-to-end test")
    _ml(built, "score", "--target", "spark")
    # then the predictions are a Spark table holding a score for every gold transaction
    predictions = built.spark_table("scoring.predictions")
    features = built.spark_table("gold.transaction_features")
    assert set(predictions["transaction_id"]) == set(features["transaction_id"])
    assert predictions["score"].between(0, 1).all()

    # when the downstream SQL models build on Spark, and on DuckDB fed the same scoring tables
    local: Any = DuckDBWarehouse(
        Target("local", "duckdb", {"path": str(built.duckdb_path)}, built.base)
    )
    try:
        for relation in SCORING_TABLES:
            local.write(built.spark_table(relation), relation, mode="overwrite")
    finally:
        local.close()
    _both_build(built, "build", "--selector", "downstream_sql")
    # then every node passed on both and the alert queues are the same
    assert _statuses(built.results["local"][-1]) == _statuses(built.results["spark"][-1])
    alerts = {
        "local": built.local_table("gold.fraud_alerts"),
        "spark": built.spark_table("gold.fraud_alerts"),
    }
    assert len(alerts["spark"]) > 0
    key = ["alert_date", "alert_rank"]
    pd.testing.assert_frame_equal(
        alerts["spark"].sort_values(key).reset_index(drop=True)[list(alerts["local"].columns)],
        alerts["local"].sort_values(key).reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )
