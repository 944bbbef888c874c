"""The monitoring Python models, called directly: ``model(dbt, session)`` with a stand-in ``dbt``
object that hands out DuckDB relations, as dbt-duckdb does.

The expected values are computed here from the raw rows with sklearn / scipy / ml.metrics /
ml.reference, independently of the models' engine-side aggregation.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from support.spark import StandInDbt
from support.common import make_feature_frame
from scipy.stats import ks_2samp
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from ml.lifecycle.metrics import card_precision_at_k
from ml.lifecycle.reference import assign_bins, compute_reference

MODELS_DIR = Path(__file__).resolve().parents[2] / "models" / "marts" / "monitoring"
MATURITY_DAYS = 7
K = 20
DRIFT_FEATURES = [
    "tx_amount",
    "tx_during_night",
    "customer_id_nb_tx_7day_window",
    "terminal_id_risk_7day_window",
]


def load_model(name: str) -> ModuleType:
    """Import a dbt Python model file as a module (dbt does the same with the compiled file)."""
    spec = importlib.util.spec_from_file_location(f"monitoring_{name}", MODELS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stand_in_dbt(
    con: duckdb.DuckDBPyConnection, meta: dict[str, Any], this: str | None = None
) -> StandInDbt:
    """What dbt-duckdb passes as ``dbt``: ref/source give DuckDB relations of ``con``."""

    def relation(name: str) -> duckdb.DuckDBPyRelation:
        return con.sql(f"select * from {name if '.' in name else 'gold.' + name}")

    return StandInDbt(relation, this=this, meta=meta)


def demo_scores(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """An informative, imperfect score, rounded so that ties occur (as with tree models)."""
    rng = np.random.default_rng(seed)
    raw = (
        0.6 * frame["terminal_id_risk_7day_window"].to_numpy()
        + 0.3 * (frame["tx_amount"].to_numpy() > 220)
        + rng.uniform(0, 0.4, len(frame))
    )
    return np.clip(raw, 0, 1).round(2)


def predictions_for(
    frame: pd.DataFrame, version: str, seed: int, scored_at: dt.datetime
) -> pd.DataFrame:
    scores = demo_scores(frame, seed)
    return pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy(),
            "score": scores,
            "is_alert": scores >= 0.5,
            "model_name": "fraud_detector",
            "model_version": version,
            "scored_at": pd.Timestamp(scored_at),
        }
    )


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    """Gold features (30 days), predictions of version 1 (all days) and version 2 (last 12 days),
    and a training reference for both versions computed from the first 10 days."""
    features = make_feature_frame(customers=150, terminals=100, days=30, seed=3)
    last_day = features["tx_date"].max()
    v1 = predictions_for(features, "1", seed=1, scored_at=dt.datetime(2018, 5, 1))
    recent = features.loc[features["tx_date"] > last_day - dt.timedelta(days=12)]
    v2 = predictions_for(recent, "2", seed=2, scored_at=dt.datetime(2018, 5, 2))
    train = features.loc[features["tx_date"] < features["tx_date"].min() + dt.timedelta(days=10)]
    reference = compute_reference(train, DRIFT_FEATURES, bins=10, quantiles=200)
    bins, sample = [], []
    for version in ("1", "2"):
        b, s = reference.for_model("fraud_detector", version)
        bins.append(b)
        sample.append(s)
    return {
        "features": features,
        "predictions": pd.concat([v1, v2], ignore_index=True),
        "feature_reference": pd.concat(bins, ignore_index=True),
        "feature_reference_sample": pd.concat(sample, ignore_index=True),
    }


def make_warehouse(path: Path, tables: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    """A DuckDB file with gold.transaction_features and the scoring.* tables."""
    con = duckdb.connect(str(path))
    con.execute("create schema gold")
    con.execute("create schema scoring")
    for relation, frame in tables.items():
        con.register("_incoming", frame)
        con.execute(f"create table {relation} as select * from _incoming")
        con.unregister("_incoming")
    return con


@pytest.fixture
def con(tmp_path: Path, world: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    con = make_warehouse(
        tmp_path / "wh.duckdb",
        {
            "gold.transaction_features": world["features"],
            "scoring.predictions": world["predictions"],
            "scoring.feature_reference": world["feature_reference"],
            "scoring.feature_reference_sample": world["feature_reference_sample"],
        },
    )
    yield con
    con.close()


def run_model(
    name: str, con: duckdb.DuckDBPyConnection, meta: dict[str, Any], this: str | None = None
) -> pd.DataFrame:
    relation = load_model(name).model(stand_in_dbt(con, meta, this), con)
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    return relation.df()


PERFORMANCE_META = {"label_maturity_days": MATURITY_DAYS, "card_precision_k": K}


# ---------------------------------------------------------------------------------------------
# model_performance_daily
# ---------------------------------------------------------------------------------------------


def test_performance_has_one_row_per_mature_day_and_version(con, world) -> None:
    # given: 30 days of features, version 1 scored every day, version 2 the last 12 days
    features = world["features"]
    mature_until = features["tx_date"].max() - dt.timedelta(days=MATURITY_DAYS)

    # when
    result = run_model("model_performance_daily", con, PERFORMANCE_META)

    # then: one row per (day, version) with a day at or before the last mature day
    scored = world["predictions"].merge(
        features[["transaction_id", "tx_date"]], on="transaction_id"
    )
    expected = scored.loc[
        scored["tx_date"] <= mature_until, ["tx_date", "model_version"]
    ].drop_duplicates()
    got = result[["tx_date", "model_version"]].assign(
        tx_date=lambda f: pd.to_datetime(f["tx_date"]).dt.date
    )
    assert sorted(map(tuple, got.to_numpy())) == sorted(map(tuple, expected.to_numpy()))
    assert set(result["model_version"]) == {"1", "2"}  # version 2 has mature days too
    assert (pd.to_datetime(result["labels_as_of"]).dt.date == features["tx_date"].max()).all()
    assert result.duplicated(["tx_date", "model_name", "model_version"]).sum() == 0


def test_performance_metrics_equal_sklearn_on_the_raw_rows(con, world) -> None:
    # given
    scored = world["predictions"].merge(world["features"], on="transaction_id")

    # when
    result = run_model("model_performance_daily", con, PERFORMANCE_META)

    # then: every metric equals the one computed from the individual transactions
    assert len(result) > 0
    for row in result.itertuples():
        rows = scored.loc[
            (scored["tx_date"] == pd.Timestamp(row.tx_date).date())
            & (scored["model_version"] == row.model_version)
        ]
        y, s = rows["tx_fraud"].to_numpy(), rows["score"].to_numpy()
        assert row.n_transactions == len(rows)
        assert row.n_frauds == y.sum()
        assert row.n_cards == rows["customer_id"].nunique()
        assert row.n_alerts == rows["is_alert"].sum()
        if 0 < y.sum() < len(y):
            assert row.roc_auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
            assert row.average_precision == pytest.approx(average_precision_score(y, s), abs=1e-12)
        else:
            assert pd.isna(row.roc_auc) and pd.isna(row.average_precision)
        cp = card_precision_at_k(rows, s, K, remove_detected=False)
        assert row.card_precision_at_k == pytest.approx(cp.mean, abs=1e-12)
        assert row.card_precision_k == K
        if rows["is_alert"].any():
            assert row.precision_at_threshold == pytest.approx(
                precision_score(y, rows["is_alert"]), abs=1e-12
            )
        else:
            assert pd.isna(row.precision_at_threshold)
        if y.any():
            assert row.recall_at_threshold == pytest.approx(
                recall_score(y, rows["is_alert"]), abs=1e-12
            )


def test_performance_result_is_typed_for_the_warehouse(con) -> None:
    # when
    relation = load_model("model_performance_daily").model(stand_in_dbt(con, PERFORMANCE_META), con)

    # then: the relation carries the declared SQL types (dates as DATE, counts as BIGINT)
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert types["tx_date"] == "DATE"
    assert types["labels_as_of"] == "DATE"
    assert types["n_transactions"] == "BIGINT"
    assert types["roc_auc"] == "DOUBLE"
    assert types["last_scored_at"] == "TIMESTAMP"


def test_performance_incremental_run_adds_only_new_or_rescored_groups(con, world) -> None:
    # given: the model's table as built yesterday, without version 2 and without the last mature day
    module = load_model("model_performance_daily")
    full = run_model("model_performance_daily", con, PERFORMANCE_META)
    last = full["tx_date"].max()
    yesterday = full.loc[(full["model_version"] == "1") & (full["tx_date"] < last)]
    con.register("_yesterday", yesterday)
    con.execute("create table gold.model_performance_daily as select * from _yesterday")
    # ... and one of its days re-scored by version 1 since
    rescored_day = yesterday["tx_date"].min()
    ids = world["features"].loc[
        world["features"]["tx_date"] == pd.Timestamp(rescored_day).date(), "transaction_id"
    ]
    con.execute(
        "update scoring.predictions set scored_at = timestamp '2018-06-01 00:00:00' "
        f"where model_version = '1' and transaction_id in ({', '.join(map(str, ids))})"
    )

    # when
    relation = module.model(
        stand_in_dbt(con, PERFORMANCE_META, this="gold.model_performance_daily"), con
    )
    added = relation.df()

    # then: version 2's days, version 1's newest day and the re-scored day - nothing else
    expected = set(
        map(tuple, full.loc[full["model_version"] == "2", ["tx_date", "model_version"]].to_numpy())
    )
    expected |= {(last, "1"), (rescored_day, "1")}
    assert set(map(tuple, added[["tx_date", "model_version"]].to_numpy())) == expected


def test_performance_is_empty_before_any_day_is_mature(tmp_path, world) -> None:
    # given: only 5 days of data, fewer than the 7 days labels need
    features = world["features"]
    first_days = features.loc[
        features["tx_date"] < features["tx_date"].min() + dt.timedelta(days=5)
    ]
    con = make_warehouse(
        tmp_path / "young.duckdb",
        {
            "gold.transaction_features": first_days,
            "scoring.predictions": world["predictions"].loc[
                world["predictions"]["transaction_id"].isin(first_days["transaction_id"])
            ],
        },
    )

    # when
    relation = load_model("model_performance_daily").model(stand_in_dbt(con, PERFORMANCE_META), con)

    # then: no rows, but the declared columns (dbt still creates the table)
    assert relation.df().empty
    assert relation.columns == list(load_model("model_performance_daily").OUTPUT_SCHEMA)


# ---------------------------------------------------------------------------------------------
# feature_drift_daily
# ---------------------------------------------------------------------------------------------

DRIFT_META = {"psi_drift_threshold": 0.25}


def expected_psi(values: np.ndarray, bins: pd.DataFrame, eps: float = 1e-4) -> float:
    bins = bins.sort_values("bin_index")
    index = assign_bins(values, bins["bin_upper"].to_numpy())
    actual = np.bincount(index, minlength=len(bins)) / len(values)
    expected = bins["expected_fraction"].to_numpy()
    actual, expected = np.maximum(actual, eps), np.maximum(expected, eps)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_drift_has_one_row_per_day_version_and_feature(con, world) -> None:
    # when
    result = run_model("feature_drift_daily", con, DRIFT_META)

    # then: every scored (day, version) x the features of the reference
    scored = world["predictions"].merge(
        world["features"][["transaction_id", "tx_date"]], on="transaction_id"
    )
    groups = scored[["tx_date", "model_version"]].drop_duplicates()
    assert len(result) == len(groups) * len(DRIFT_FEATURES)
    assert set(result["feature"]) == set(DRIFT_FEATURES)
    assert result.duplicated(["tx_date", "model_name", "model_version", "feature"]).sum() == 0


def test_drift_psi_and_ks_match_the_reference_computation(con, world) -> None:
    # given
    scored = world["predictions"].merge(world["features"], on="transaction_id")
    bins = world["feature_reference"]
    sample = world["feature_reference_sample"]

    # when
    result = run_model("feature_drift_daily", con, DRIFT_META)

    # then: PSI with ml.reference's binning rule, KS with scipy, on each day's raw values
    for row in result.sample(40, random_state=0).itertuples():
        key = (bins["model_version"] == row.model_version) & (bins["feature"] == row.feature)
        values = scored.loc[
            (scored["tx_date"] == pd.Timestamp(row.tx_date).date())
            & (scored["model_version"] == row.model_version),
            row.feature,
        ].to_numpy(dtype="float64")
        ref = sample.loc[
            (sample["model_version"] == row.model_version) & (sample["feature"] == row.feature),
            "value",
        ]
        assert row.n_values == len(values)
        assert row.reference_bins == key.sum()
        assert row.psi == pytest.approx(expected_psi(values, bins.loc[key]), rel=1e-9, abs=1e-12)
        ks = ks_2samp(values, ref.to_numpy(), method="asymp")
        assert row.ks_statistic == pytest.approx(ks.statistic, abs=1e-12)
        assert row.ks_pvalue == pytest.approx(ks.pvalue, rel=1e-9)
        assert row.is_drifted == (row.psi >= 0.25)


def test_drift_is_zero_when_the_day_is_the_reference_and_large_when_shifted(
    tmp_path, world
) -> None:
    # given: one day scored by version 1, whose training reference is that very day's data
    features = world["features"]
    day = features.loc[features["tx_date"] == features["tx_date"].min() + dt.timedelta(days=10)]
    predictions = predictions_for(day, "1", seed=1, scored_at=dt.datetime(2018, 5, 1))
    reference = compute_reference(day, DRIFT_FEATURES, bins=10, quantiles=1000)
    bins, sample = reference.for_model("fraud_detector", "1")
    tables = {
        "gold.transaction_features": day,
        "scoring.predictions": predictions,
        "scoring.feature_reference": bins,
        "scoring.feature_reference_sample": sample,
    }
    same = make_warehouse(tmp_path / "same.duckdb", tables)
    # ... and the same day with amounts shifted (x3 + 50) after training
    shifted_day = day.assign(tx_amount=day["tx_amount"] * 3 + 50)
    shifted = make_warehouse(
        tmp_path / "shifted.duckdb", {**tables, "gold.transaction_features": shifted_day}
    )

    # when
    same_drift = run_model("feature_drift_daily", same, DRIFT_META).set_index("feature")
    shifted_drift = run_model("feature_drift_daily", shifted, DRIFT_META).set_index("feature")

    # then: no drift at all on the reference data itself ...
    assert same_drift["psi"].abs().max() < 1e-12
    assert same_drift["ks_statistic"].max() < 0.01  # quantile sample vs the values it summarises
    assert not same_drift["is_drifted"].any()
    # ... a large one for the shifted amount, and none for the features left alone
    assert shifted_drift.loc["tx_amount", "psi"] > 1.0
    assert shifted_drift.loc["tx_amount", "ks_statistic"] > 0.5
    assert shifted_drift.loc["tx_amount", "is_drifted"]
    others = [f for f in DRIFT_FEATURES if f != "tx_amount"]
    assert shifted_drift.loc[others, "psi"].abs().max() < 1e-12


def test_drift_incremental_run_adds_only_new_groups(con, world) -> None:
    # given: yesterday's table without version 2
    full = run_model("feature_drift_daily", con, DRIFT_META)
    con.register("_yesterday", full.loc[full["model_version"] == "1"])
    con.execute("create table gold.feature_drift_daily as select * from _yesterday")

    # when
    added = run_model("feature_drift_daily", con, DRIFT_META, this="gold.feature_drift_daily")

    # then: only version 2's rows, equal to those of the full run
    assert set(added["model_version"]) == {"2"}
    expected = (
        full.loc[full["model_version"] == "2"]
        .sort_values(["tx_date", "feature"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        added.sort_values(["tx_date", "feature"]).reset_index(drop=True), expected
    )


def test_drift_reports_a_reference_feature_missing_from_the_gold_table(tmp_path, world) -> None:
    # given: a reference for a feature the gold table does not have
    bins = world["feature_reference"].copy()
    bins.loc[bins["feature"] == "tx_amount", "feature"] = "tx_amount_in_eur"
    con = make_warehouse(
        tmp_path / "wh.duckdb",
        {
            "gold.transaction_features": world["features"],
            "scoring.predictions": world["predictions"],
            "scoring.feature_reference": bins,
            "scoring.feature_reference_sample": world["feature_reference_sample"],
        },
    )

    # when / then
    with pytest.raises(ValueError, match="tx_amount_in_eur"):
        load_model("feature_drift_daily").model(stand_in_dbt(con, DRIFT_META), con)


#: Helpers both dbt Python models carry. dbt ships each model file to the warehouse on its own
#: (on Databricks a Python model runs as one notebook, without the repository's modules), so they
#: cannot import a shared module: they keep identical copies, and this test keeps them identical.
SHARED_HELPERS = ("_as_date", "_empty", "_pending_only", "_python_value", "_typed", "to_engine")


def test_the_python_models_share_identical_helpers():
    sources = {}
    for name in ("feature_drift_daily", "model_performance_daily"):
        text = (MODELS_DIR / f"{name}.py").read_text()
        sources[name] = {
            node.name: ast.get_source_segment(text, node)
            for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef) and node.name in SHARED_HELPERS
        }
    drift, performance = sources.values()
    assert set(drift) == set(performance) == set(SHARED_HELPERS)
    different = [name for name in SHARED_HELPERS if drift[name] != performance[name]]
    assert different == [], f"copies differ: {different}; change both models alike"
