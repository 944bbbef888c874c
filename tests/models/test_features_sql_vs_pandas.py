"""End to end: simulated landing files -> dbt build -> gold.transaction_features, compared with the
pandas reference (bench/pandas_features.py) on every transaction.

The simulated world is made harder than the default: fraud reports arrive up to 20 days after
the transaction (so some frauds in a terminal window are not yet known at t), and pairs of a
card's transactions are moved into the same second (so same-second ordering matters). The dbt
build runs the unit tests, data tests and singular tests of the models as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.dbt import dbt_env, warehouse_of
from support.features import load_reference, move_into_same_second

from ml.platform.dbt import run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import EXTRA_FEATURES, FEATURES, SimulationSettings, load_settings
from ml.world.landing import write_landing
from ml.world.simulator import SimulatedWorld, simulate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SAME_SECOND_PAIRS = 25
LABEL_DELAY_DAYS = 20


@dataclass
class Build:
    transactions: pd.DataFrame
    reports: pd.DataFrame
    features: pd.DataFrame
    run_results: dict[str, Any]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    workdir = tmp_path_factory.mktemp("features")
    env = dbt_env(workdir)
    world = simulate(
        SimulationSettings(
            customers=300, terminals=300, days=60, seed=3, label_delay_days=LABEL_DELAY_DAYS
        )
    )
    move_into_same_second(world, SAME_SECOND_PAIRS)
    write_landing(world, workdir / "landing")
    result = run_dbt(
        [
            "build",
            "--select",
            "+transaction_features",
            "+fraud_kpis_daily",
            "resource_type:seed",
            # only the tests whose every parent is built here
            "--indirect-selection",
            "cautious",
        ],
        project_dir=REPO_ROOT,
        target_path=workdir / "target",
        env=env,
    )
    with warehouse_of(env) as warehouse:
        yield Build(
                transactions=warehouse.read("silver.int_transactions_deduplicated"),
                reports=warehouse.read("silver.int_fraud_reports_deduplicated"),
                features=warehouse.read("gold.transaction_features"),
                run_results=result.nodes,
            )


def test_sql_features_equal_the_pandas_reference(build: Build) -> None:
    # given the silver rows the model was built from
    reference = load_reference()
    # when the reference computes the features from them
    expected = reference.compute_features(build.transactions, build.reports)
    # then every transaction has the same 15 + 6 features and label
    columns = [*FEATURES, *EXTRA_FEATURES, "tx_fraud"]
    comparison = reference.compare(build.features, expected, columns)
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
    assert comparison.rows == len(build.transactions) > 10_000


def test_the_data_exercises_ties_and_late_reports(build: Build) -> None:
    # given the built silver rows
    reference = load_reference()
    tx = build.transactions
    # then some cards have several transactions in one second ...
    ties = tx.groupby(["customer_id", "tx_epoch_s"]).size()
    assert (ties > 1).sum() >= SAME_SECOND_PAIRS // 2
    # ... and knowing every label at once (reports moved to the transaction time) would change
    # some terminal risks: the point-in-time rule is not vacuous here
    known_at_once = build.reports.merge(tx[["transaction_id", "tx_datetime"]], on="transaction_id")
    known_at_once["reported_at"] = known_at_once["tx_datetime"]
    point_in_time = reference.compute_features(tx, build.reports)
    hindsight = reference.compute_features(tx, known_at_once)
    assert not reference.compare(point_in_time, hindsight).equal


def test_the_build_ran_the_feature_tests(build: Build) -> None:
    # given the dbt build's results, then the unit and singular tests of the features ran and passed
    statuses = {unique_id: node["status"] for unique_id, node in build.run_results.items()}
    expected = [
        "unit_test.fraudops.transaction_features.transaction_features__customer_windows_are_left_open",
        "unit_test.fraudops.transaction_features.transaction_features__risk_counts_only_frauds_reported_by_t",
        "test.fraudops.test_transaction_features__no_future_dependence",
        "test.fraudops.test_transaction_features__matches_daily_kpis",
    ]
    for name in expected:
        matching = [status for unique_id, status in statuses.items() if unique_id.startswith(name)]
        assert matching == ["pass"], f"{name}: {matching}"
    assert statuses["model.fraudops.transaction_features"] == "success"
