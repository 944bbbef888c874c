"""`Warehouse.read_unmatched` (what ml score reads: transactions not scored by a version) gives the
same rows on DuckDB, on Spark and in the generic pandas fallback of the base class."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.spark import local_spark_target

from ml.platform.warehouse import DuckDBWarehouse, SparkWarehouse, Target, Warehouse

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]
START = dt.date(2018, 5, 1)


def _features(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "tx_date": [START + dt.timedelta(days=i % 5) for i in range(n)],
            "tx_amount": np.linspace(1.0, 10.0, n),
        }
    )


def _predictions(ids: list[int], version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": np.array(ids, dtype="int64"),
            "score": np.full(len(ids), 0.5),
            "model_name": "fraud_detector",
            "model_version": version,
        }
    )


def test_read_unmatched_is_the_same_on_duckdb_spark_and_the_fallback(
    spark: Any, tmp_path: Path
) -> None:
    # given the same features and predictions (v1 scored 0..5, v2 scored 3..4) in both warehouses
    schema = f"scoring_{uuid.uuid4().hex[:10]}"
    features, predictions = f"{schema}.features", f"{schema}.predictions"
    duck = DuckDBWarehouse(
        Target("local", "duckdb", {"path": str(tmp_path / "wh.duckdb")}, tmp_path)
    )
    engines = {"duckdb": duck, "spark": SparkWarehouse(local_spark_target(tmp_path), session=spark)}
    try:
        for wh in engines.values():
            wh.write(_features(), features, mode="overwrite")
            wh.write(_predictions([0, 1, 2, 3, 4, 5], "1"), predictions, mode="append")
            wh.write(_predictions([3, 4], "2"), predictions, mode="append")

        def unscored(wh: Warehouse, read: Any, version: str, **dates: dt.date) -> list[int]:
            frame = read(
                wh,
                features,
                ["transaction_id", "tx_amount"],
                "transaction_id",
                predictions,
                {"model_version": version},
                "tx_date" if dates else None,
                dates.get("start"),
                dates.get("end"),
            )
            assert list(frame.columns) == ["transaction_id", "tx_amount"]
            return sorted(frame["transaction_id"].tolist())

        # when each engine (and the base class's pandas version) reads what a version has not scored
        for name, wh in engines.items():
            for read in (type(wh).read_unmatched, Warehouse.read_unmatched):
                # then: v1 left 6..9, v2 all but 3 and 4, a date range cuts both, an unknown version gets all
                assert unscored(wh, read, "1") == [6, 7, 8, 9], name
                assert unscored(wh, read, "2") == [0, 1, 2, 5, 6, 7, 8, 9], name
                window = {
                    "start": START + dt.timedelta(days=1),
                    "end": START + dt.timedelta(days=2),
                }
                assert unscored(wh, read, "1", **window) == [6, 7], name
                assert unscored(wh, read, "9") == list(range(10)), name
            # and without a predictions table every row is unscored
            frame = wh.read_unmatched(
                features, ["transaction_id"], "transaction_id", f"{schema}.nothing_yet"
            )
            assert sorted(frame["transaction_id"]) == list(range(10)), name
    finally:
        duck.close()
