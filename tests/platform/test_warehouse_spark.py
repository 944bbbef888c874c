"""SparkWarehouse: the same interface and the same results as DuckDBWarehouse.

Every Spark test writes the same frame through both implementations and compares what comes
back (rows and pandas dtypes), so `ml` code behaves identically on either target.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.spark import REPO_ROOT, local_spark_target

from ml.platform.errors import ConfigError, DataNotReadyError
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.warehouse import DuckDBWarehouse, SparkWarehouse, Target, local_spark_conf

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


def predictions(
    ids: list[int], version: str = "1", day: dt.date = dt.date(2018, 5, 1)
) -> pd.DataFrame:
    """scoring.predictions rows (docs/architecture.md), plus a date and a nullable integer."""
    n = len(ids)
    return pd.DataFrame(
        {
            "transaction_id": np.array(ids, dtype="int64"),
            "score": np.linspace(0.05, 0.95, n),
            "is_alert": np.linspace(0.05, 0.95, n) >= 0.5,
            "model_name": ["fraud_detector"] * n,
            "model_version": [version] * n,
            "scored_at": pd.Series([pd.Timestamp("2018-05-02 03:04:05.123456")] * n).astype(
                "datetime64[us]"
            ),
            "tx_date": [day + dt.timedelta(days=i % 3) for i in range(n)],
            "fraud_scenario": pd.array([None if i % 2 else i % 4 for i in range(n)], dtype="Int32"),
        }
    )


@pytest.fixture
def schema() -> str:
    """A fresh schema name per test (the Spark session and its metastore are shared)."""
    return f"scoring_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def both(spark: Any, tmp_path: Path) -> dict[str, Any]:
    target = local_spark_target(tmp_path)
    duck = DuckDBWarehouse(
        Target("local", "duckdb", {"path": str(tmp_path / "wh.duckdb")}, tmp_path)
    )
    warehouses = {"duckdb": duck, "spark": SparkWarehouse(target, session=spark)}
    yield warehouses
    duck.close()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns[:1])).reset_index(drop=True)


@pytest.mark.spark
def test_write_then_read_gives_the_same_frame_on_both(both: dict[str, Any], schema: str) -> None:
    # given one frame with every column type of the warehouse contracts
    frame = predictions(list(range(10)))
    relation = f"{schema}.predictions"
    # when both warehouses store it and read a date range of it back
    read = {}
    for name, wh in both.items():
        assert not wh.exists(relation)
        assert wh.write(frame, relation, mode="append") == 10
        assert wh.exists(relation)
        assert wh.columns(relation) == list(frame.columns)
        read[name] = wh.read(
            relation,
            ["transaction_id", "scored_at", "tx_date", "fraud_scenario", "is_alert"],
            "tx_date",
            dt.date(2018, 5, 2),
            dt.date(2018, 5, 3),
        )
    # then rows and dtypes agree (dates as datetime64, nullable integers stay nullable)
    pd.testing.assert_frame_equal(_sorted(read["spark"]), _sorted(read["duckdb"]))
    assert len(read["spark"]) == sum(1 for i in range(10) if i % 3 in (1, 2))
    assert str(read["spark"]["fraud_scenario"].dtype) == "Int32"
    assert read["spark"]["scored_at"].iloc[0] == pd.Timestamp("2018-05-02 03:04:05.123456")


@pytest.mark.spark
def test_both_engines_return_the_rows_in_the_order_asked(both: dict[str, Any], schema: str) -> None:
    # given rows written out of order (ids descending; three days, ties within a day)
    frame = predictions(list(range(9, -1, -1)))
    relation = f"{schema}.predictions"
    for name, wh in both.items():
        wh.write(frame, relation)
        # when read ordered by day then id, without sorting the frame
        read = wh.read(
            relation, ["transaction_id", "tx_date"], order_by=("tx_date", "transaction_id")
        )
        # then the engine sorted them
        expected = frame.sort_values(["tx_date", "transaction_id"])["transaction_id"].tolist()
        assert read["transaction_id"].tolist() == expected, name
        with pytest.raises(ConfigError, match="invalid column name"):
            wh.read(relation, ["transaction_id"], order_by=("tx_date; drop table x",))


@pytest.mark.spark
def test_insert_new_is_idempotent_and_counts_like_duckdb(both: dict[str, Any], schema: str) -> None:
    # given a table with transactions 0..5 of version 1
    relation = f"{schema}.predictions"
    keys = ["transaction_id", "model_version"]
    added = {name: [] for name in both}
    for name, wh in both.items():
        added[name].append(
            wh.write(predictions(list(range(6))), relation, mode="insert_new", keys=keys)
        )
        # when the same rows come again, then overlapping ones, then another version
        added[name].append(
            wh.write(predictions(list(range(6))), relation, mode="insert_new", keys=keys)
        )
        added[name].append(
            wh.write(predictions(list(range(4, 9))), relation, mode="insert_new", keys=keys)
        )
        added[name].append(
            wh.write(predictions([0, 1], version="2"), relation, mode="insert_new", keys=keys)
        )
    # then only new keys are added, the same on both
    assert added["spark"] == added["duckdb"] == [6, 0, 3, 2]
    counts = {name: wh.scalar(f"select count(*) from {relation}") for name, wh in both.items()}
    assert counts == {"duckdb": 11, "spark": 11}


@pytest.mark.spark
def test_overwrite_replaces_rows_and_schema(both: dict[str, Any], schema: str, spark: Any) -> None:
    # given a table with 8 rows
    relation = f"{schema}.feature_reference"
    for wh in both.values():
        wh.write(predictions(list(range(8))), relation)
    # when it is overwritten by a frame with fewer rows and other columns
    replacement = pd.DataFrame({"feature": ["tx_amount", "tx_during_night"], "bin_index": [0, 1]})
    for wh in both.values():
        assert wh.write(replacement, relation, mode="overwrite") == 2
    # then only the new rows and columns remain, and no staging table is left behind
    for wh in both.values():
        assert wh.columns(relation) == ["feature", "bin_index"]
        assert wh.scalar(f"select count(*) from {relation}") == 2
    tables = [
        row.tableName
        for row in spark.sql(f"show tables in {schema}").collect()
        if not row.isTemporary
    ]
    assert tables == ["feature_reference"]


@pytest.mark.spark
def test_append_adds_every_row_and_rejects_unknown_columns(
    both: dict[str, Any], schema: str
) -> None:
    relation = f"{schema}.predictions"
    spark_wh = both["spark"]
    # given a table
    spark_wh.write(predictions([1, 2]), relation)
    # when the same rows are appended (no key check), then rows with an extra column
    assert spark_wh.write(predictions([1, 2]), relation, mode="append") == 2
    with pytest.raises(DataNotReadyError, match="has no column"):
        spark_wh.write(predictions([3]).assign(extra=1), relation, mode="append")
    # then the table holds the four appended rows only
    assert spark_wh.scalar(f"select count(*) from {relation}") == 4


@pytest.mark.spark
def test_scalar_returns_python_values_like_duckdb(both: dict[str, Any], schema: str) -> None:
    relation = f"{schema}.predictions"
    for wh in both.values():
        wh.write(predictions(list(range(5))), relation)
    for query in (
        f"select max(tx_date) from {relation}",
        f"select max(scored_at) from {relation}",
        f"select count(*) from {relation} where is_alert",
    ):
        assert both["spark"].scalar(query) == both["duckdb"].scalar(query)


@pytest.mark.spark
def test_open_warehouse_uses_the_active_session_for_the_spark_target(
    spark: Any, tmp_path: Path
) -> None:
    # given an active SparkSession (as in a Databricks job) and settings for the spark target
    settings = load_settings(dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)})
    # when ml opens the warehouse of the spark target
    with Runtime.build(settings, "spark").warehouse() as wh:
        # then it is a SparkWarehouse on that very session (no second session is built)
        assert isinstance(wh, SparkWarehouse)
        assert wh.spark is spark
        assert wh.table_format == "parquet"
    # and closing it leaves the session it did not build running
    assert spark.sql("select 1 as one").first().one == 1


class _RecordingCatalog:
    def __init__(self) -> None:
        self.current: str | None = None

    def setCurrentCatalog(self, name: str) -> None:
        self.current = name


class _StubSession:
    def __init__(self) -> None:
        self.catalog = _RecordingCatalog()


def test_databricks_relations_live_in_the_target_catalog(tmp_path: Path) -> None:
    # given a databricks target with catalog fraudops_prod and the job's session
    target = Target(
        "databricks", "databricks", {"catalog": "fraudops_prod", "schema": "default"}, tmp_path
    )
    session = _StubSession()
    # when ml opens it
    wh = SparkWarehouse(target, session=session)
    # then two-part names resolve in the catalog, which is also the session's current catalog
    assert wh.table_format == "delta"
    assert wh.location("scoring.predictions") == "fraudops_prod.scoring.predictions"
    assert wh.location("other.scoring.predictions") == "other.scoring.predictions"
    assert session.catalog.current == "fraudops_prod"


def test_local_spark_conf_resolves_relative_paths_against_the_project(tmp_path: Path) -> None:
    # given the spark target with its default, relative folder (warehouse/spark)
    target = Target(
        "spark",
        "spark",
        {
            "server_side_parameters": {
                "spark.sql.warehouse.dir": "warehouse/spark/warehouse",
                "spark.driver.extraJavaOptions": "-Dderby.system.home=warehouse/spark -Duser.timezone=UTC",
            }
        },
        tmp_path,
    )
    # when ml derives its session settings
    conf = local_spark_conf(target)
    # then the folders are the ones dbt uses when it runs in the project directory
    assert conf["spark.sql.warehouse.dir"] == str(tmp_path / "warehouse/spark/warehouse")
    assert (
        f"-Dderby.system.home={tmp_path / 'warehouse/spark'} "
        in conf["spark.driver.extraJavaOptions"]
    )
    assert conf["spark.sql.session.timeZone"] == "UTC"
