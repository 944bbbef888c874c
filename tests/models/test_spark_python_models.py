"""The dbt Python models run unchanged on PySpark and on DuckDB, with the same results.

Each model in models/marts/monitoring/*.py is imported as a module and its ``model(dbt, session)``
is called twice on the same inputs: once with a stand-in ``dbt`` that hands out DuckDB relations
(as dbt-duckdb does) and a DuckDB connection, once with PySpark DataFrames (as dbt-spark /
dbt-databricks do) and the local SparkSession. The outputs must agree row for row, on a first
run and on an incremental run (``dbt.this`` holding the first run's rows).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from support.common import make_feature_frame
from support.spark import REPO_ROOT, StandInDbt, load_python_model

from ml.platform.warehouse import pandas_to_spark

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

MODELS_DIR = REPO_ROOT / "models" / "marts" / "monitoring"
PYTHON_MODELS = sorted(MODELS_DIR.glob("*.py"))
DRIFT_FEATURES = [
    "tx_amount",
    "tx_during_night",
    "customer_id_nb_tx_7day_window",
    "terminal_id_risk_7day_window",
]
META = {"label_maturity_days": 7, "card_precision_k": 15, "psi_drift_threshold": 0.25}
KEYS = ["tx_date", "model_name", "model_version", "feature"]


def _predictions(frame: pd.DataFrame, version: str, seed: int, scored_at: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = np.clip(
        0.6 * frame["terminal_id_risk_7day_window"].to_numpy()
        + 0.3 * (frame["tx_amount"].to_numpy() > 220)
        + rng.uniform(0, 0.4, len(frame)),
        0,
        1,
    ).round(2)  # ties, as tree models give
    return pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy(dtype="int64"),
            "score": score,
            "is_alert": score >= 0.5,
            "model_name": "fraud_detector",
            "model_version": version,
            "scored_at": pd.Timestamp(scored_at),
        }
    ).astype({"scored_at": "datetime64[us]"})


def _reference(
    train: pd.DataFrame, version: str, bins: int = 10, quantiles: int = 60
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scoring.feature_reference (quantile bins) and feature_reference_sample of one version."""
    rows, sample = [], []
    for feature in DRIFT_FEATURES:
        values = train[feature].to_numpy(dtype="float64")
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([values.min(), values.min() + 1.0])
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(index, minlength=len(edges) - 1)
        for i in range(len(edges) - 1):
            rows.append((feature, i, float(edges[i]), float(edges[i + 1]), counts[i] / len(values)))
        sample += [(feature, float(v)) for v in np.quantile(values, np.linspace(0, 1, quantiles))]
    ref = pd.DataFrame(
        rows, columns=["feature", "bin_index", "bin_lower", "bin_upper", "expected_fraction"]
    )
    ref = ref.astype({"bin_index": "int32"})
    smp = pd.DataFrame(sample, columns=["feature", "value"])
    for frame in (ref, smp):
        frame.insert(0, "model_version", version)
        frame.insert(0, "model_name", "fraud_detector")
    return ref, smp


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    """Gold features (25 days); version 1 scored every day, version 2 the last 10; references
    of both versions from the first 10 days; and a later re-scoring of two days by version 2."""
    features = make_feature_frame(customers=80, terminals=60, days=25, seed=7)
    last = features["tx_date"].max()
    recent = features.loc[features["tx_date"] > last - dt.timedelta(days=10)]
    train = features.loc[features["tx_date"] < features["tx_date"].min() + dt.timedelta(days=10)]
    ref1, smp1 = _reference(train, "1")
    ref2, smp2 = _reference(train.iloc[::2], "2")
    rescored_days = sorted(recent["tx_date"].unique())[:2]
    rescored = recent.loc[recent["tx_date"].isin(rescored_days)]
    return {
        "transaction_features": features,
        "scoring.predictions": pd.concat(
            [
                _predictions(features, "1", 1, "2018-05-01"),
                _predictions(recent, "2", 2, "2018-05-02"),
            ],
            ignore_index=True,
        ),
        "scoring.feature_reference": pd.concat([ref1, ref2], ignore_index=True),
        "scoring.feature_reference_sample": pd.concat([smp1, smp2], ignore_index=True),
        # the incremental run: version 2 scores two of its days again, later
        "rescored": _predictions(rescored, "2", 3, "2018-05-03"),
    }


class DuckDBEngine:
    def __init__(self, tables: dict[str, pd.DataFrame]):
        self.con = duckdb.connect()
        self.tables = dict(tables)

    def relation(self, name: str) -> Any:
        return self.con.from_df(self.tables[name])

    def set_this(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, frame)

    @staticmethod
    def to_pandas(result: Any) -> pd.DataFrame:
        return result.df()


class SparkEngine:
    def __init__(self, session: Any, tables: dict[str, pd.DataFrame]):
        self.session = session
        self.frames = {name: pandas_to_spark(session, frame) for name, frame in tables.items()}

    def relation(self, name: str) -> Any:
        return self.frames[name]

    def set_this(self, name: str, frame: pd.DataFrame) -> None:
        pandas_to_spark(self.session, frame).createOrReplaceTempView(name)

    @staticmethod
    def to_pandas(result: Any) -> pd.DataFrame:
        return result.toPandas()


def _normalised(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Engine-independent pandas: dates as datetime.date, timestamps as naive datetime64[us]."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column in ("tx_date", "labels_as_of"):
            out[column] = pd.to_datetime(values).dt.date
        elif column.endswith("_at"):
            out[column] = pd.to_datetime(values).astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(values) or column.startswith("is_"):
            out[column] = values.astype("boolean")
        elif pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype("float64")
        else:
            out[column] = values.astype("object")
    return out.sort_values([k for k in keys if k in out.columns]).reset_index(drop=True)


def _run(module: Any, engine: Any, session: Any, this: str | None = None) -> pd.DataFrame:
    dbt = StandInDbt(engine.relation, this=this, meta=META)
    return engine.to_pandas(module.model(dbt, session))


def test_every_python_model_is_covered() -> None:
    assert {p.stem for p in PYTHON_MODELS} >= {"feature_drift_daily", "model_performance_daily"}


@pytest.mark.parametrize("path", PYTHON_MODELS, ids=lambda p: p.stem)
def test_python_model_gives_the_same_rows_on_spark_and_duckdb(
    path: Path, world: dict, spark: Any
) -> None:
    module = load_python_model(path)
    tables = {name: frame for name, frame in world.items() if name != "rescored"}
    duck = DuckDBEngine(tables)
    sparky = SparkEngine(spark, tables)

    # given the same inputs in both engines, when the model runs for the first time
    first = {"duckdb": _run(module, duck, duck.con), "spark": _run(module, sparky, spark)}
    # then both engines give the same, non-trivial rows
    assert len(first["duckdb"]) > 0
    assert list(first["spark"].columns) == list(first["duckdb"].columns)
    pd.testing.assert_frame_equal(
        _normalised(first["spark"], KEYS),
        _normalised(first["duckdb"], KEYS),
        check_exact=False,
        rtol=1e-9,
        atol=1e-12,
    )

    # given a later re-scoring of two days, when the model runs incrementally over its first rows
    rescored = pd.concat([tables["scoring.predictions"], world["rescored"]], ignore_index=True)
    this = f"this_{path.stem}"
    incremental = {}
    for name, engine, session in (("duckdb", duck, duck.con), ("spark", sparky, spark)):
        if name == "duckdb":
            engine.tables["scoring.predictions"] = rescored
        else:
            engine.frames["scoring.predictions"] = pandas_to_spark(spark, rescored)
        engine.set_this(this, first["duckdb"])
        incremental[name] = _run(module, engine, session, this=this)
    spark.catalog.dropTempView(this)
    # then only the re-scored (day, version) groups are recomputed, the same on both engines
    recomputed = _normalised(incremental["duckdb"], KEYS)
    assert len(recomputed) > 0
    assert set(recomputed["model_version"]) == {"2"}
    assert len(recomputed) < len(first["duckdb"])
    pd.testing.assert_frame_equal(
        _normalised(incremental["spark"], KEYS),
        recomputed,
        check_exact=False,
        rtol=1e-9,
        atol=1e-12,
    )
