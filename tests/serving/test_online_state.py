"""The embedded online state on a simulated world, without dbt: against the pandas reference
(bench/pandas_features.py) over every transaction, and its housekeeping (eviction, a restart
from a bootstrap plus the log of served transactions) leaves the features unchanged."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from support.serving import load_reference, replay

from ml.platform.settings import SimulationSettings
from ml.serving.memory import InMemoryFeatureState
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.windows import FeatureWindows
from ml.world.simulator import simulate


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 days of 300 cards with reports up to 20 days late: (transactions, reports) as landed."""
    simulated = simulate(
        SimulationSettings(customers=300, terminals=300, days=60, seed=2, label_delay_days=20)
    )
    tx = simulated.transactions
    horizon = pd.Timestamp(simulated.end + dt.timedelta(days=1))
    reports = simulated.fraud_reports
    return tx, reports[reports["reported_at"] < horizon]


def test_online_features_equal_the_pandas_reference_over_a_world(
    world: tuple[pd.DataFrame, pd.DataFrame], windows: FeatureWindows
) -> None:
    # given a simulated world's landed transactions and reports
    tx, reports = world
    # when all of them are served through an empty state in time order
    online = replay(InMemoryFeatureState(windows), tx, reports)
    # then every transaction has the reference's 21 features, labels as known at t
    reference = load_reference()
    silver = tx.assign(tx_epoch_s=tx["tx_datetime"].astype("int64") // 10**6)
    expected = reference.compute_features(silver, reports)
    comparison = reference.compare(online, expected, list(windows.columns()))
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
    assert comparison.rows == len(tx) > 20_000


def test_eviction_and_a_restart_from_the_log_change_no_feature(
    world: tuple[pd.DataFrame, pd.DataFrame], windows: FeatureWindows
) -> None:
    # given a state that served days 0-49, evicted what is too old, and one rebuilt as a restart
    # would be: a bootstrap of days 0-39 plus the log of days 40-49 (overlapping: ids repeat)
    tx, reports = world
    day = tx["tx_time_days"]
    served = InMemoryFeatureState(windows)
    replay(
        served,
        tx[day < 50],
        reports[reports["reported_at"] < tx.loc[day >= 50, "tx_datetime"].min()],
    )
    before = served.size()
    assert served.evict() > 0 and served.size().transactions < before.transactions
    restarted = InMemoryFeatureState(windows)
    replay(restarted, tx[day < 40], reports.iloc[:0])
    assert (
        restarted.add_transactions(TransactionRows.from_frame(tx[(day >= 35) & (day < 50)]))
        == ((day >= 40) & (day < 50)).sum()
    )
    known = reports[reports["reported_at"] < tx.loc[day >= 50, "tx_datetime"].min()]
    assert restarted.add_fraud_reports(ReportRows.from_frame(known)) == len(known)
    # when both serve days 50-59 with their reports
    later = reports[reports["reported_at"] >= tx.loc[day >= 50, "tx_datetime"].min()]
    after_eviction = replay(served, tx[day >= 50], later)
    after_restart = replay(restarted, tx[day >= 50], later)
    # then they agree on every feature
    comparison = load_reference().compare(after_restart, after_eviction, list(windows.columns()))
    assert comparison.equal, comparison.summary()
    assert served.as_of == restarted.as_of == tx["tx_datetime"].max()


def test_the_settings_windows_are_the_dbt_projects(tmp_path):
    # the online state takes its windows from the settings, the source of the dbt vars
    from support.common import settings_for

    from ml.serving.windows import FeatureWindows

    settings = settings_for(tmp_path)
    assert FeatureWindows.from_settings(settings) == FeatureWindows.from_dbt_project(
        settings.dbt.project_dir
    )
    shorter = settings_for(tmp_path, features={"terminal_delay_days": 3})
    assert FeatureWindows.from_settings(shorter).delay_days == 3
    assert FeatureWindows.from_settings(shorter).lookback_days == 33
