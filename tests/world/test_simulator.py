"""The transaction simulator (ml.simulate): profiles, transactions, fraud scenarios, reports."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.platform.settings import SimulationSettings
from ml.world.simulator import (
    CUSTOMER_COMPROMISE_DAYS,
    LARGE_AMOUNT_THRESHOLD,
    SECONDS_PER_DAY,
    TERMINAL_COMPROMISE_DAYS,
    SimulatedWorld,
    simulate,
)

SMALL = SimulationSettings(customers=200, terminals=400, days=40, seed=7)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return simulate(SMALL)


def _assert_worlds_equal(a: SimulatedWorld, b: SimulatedWorld) -> None:
    for name in (
        "customers",
        "terminals",
        "transactions",
        "compromised_terminals",
        "compromised_customers",
    ):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_same_seed_gives_the_same_world(world: SimulatedWorld) -> None:
    # given the settings of an existing world / when simulated again
    again = simulate(SMALL)
    # then every table is identical
    _assert_worlds_equal(world, again)


def test_another_seed_gives_another_world(world: SimulatedWorld) -> None:
    other = simulate(SMALL.model_copy(update={"seed": 8}))
    assert not np.allclose(world.customers["mean_amount"], other.customers["mean_amount"])
    assert len(world.transactions) != len(other.transactions) or not world.transactions[
        "tx_amount"
    ].equals(other.transactions["tx_amount"])


def test_the_label_delay_changes_only_report_times(world: SimulatedWorld) -> None:
    # given the same seed with another label delay
    other = simulate(SMALL.model_copy(update={"label_delay_days": 2}))
    # then transactions and labels are the same, report times differ and respect the new delay
    columns = [c for c in world.transactions.columns if c != "reported_at"]
    pd.testing.assert_frame_equal(world.transactions[columns], other.transactions[columns])
    frauds = other.transactions[other.transactions["tx_fraud"] == 1]
    assert (frauds["reported_at"] - frauds["tx_datetime"]).max() <= pd.Timedelta(days=2)


def test_profiles_are_within_their_distributions(world: SimulatedWorld) -> None:
    customers, terminals = world.customers, world.terminals
    assert list(customers["customer_id"]) == list(range(SMALL.customers))
    assert list(terminals["terminal_id"]) == list(range(SMALL.terminals))
    for column in ("x_customer", "y_customer"):
        assert customers[column].between(0, 100).all()
    for column in ("x_terminal", "y_terminal"):
        assert terminals[column].between(0, 100).all()
    assert customers["mean_amount"].between(5, 100).all()
    np.testing.assert_allclose(customers["std_amount"], customers["mean_amount"] / 2)
    assert customers["mean_nb_tx_per_day"].between(0, 4).all()
    # uniform draws spread over their range
    assert customers["mean_amount"].min() < 15 and customers["mean_amount"].max() > 90
    assert (
        customers["mean_nb_tx_per_day"].min() < 0.4 and customers["mean_nb_tx_per_day"].max() > 3.6
    )


def test_customers_use_only_terminals_within_the_radius(world: SimulatedWorld) -> None:
    tx = world.transactions.merge(world.customers, on="customer_id").merge(
        world.terminals, on="terminal_id"
    )
    distance = np.hypot(tx["x_customer"] - tx["x_terminal"], tx["y_customer"] - tx["y_terminal"])
    assert len(tx) == len(world.transactions)
    assert (distance <= SMALL.radius).all()
    # and customers with no terminal nearby make no transaction
    lonely = world.customers.loc[world.customers["nb_terminals"] == 0, "customer_id"]
    assert not world.transactions["customer_id"].isin(lonely).any()


def test_transactions_are_ordered_and_inside_their_day(world: SimulatedWorld) -> None:
    tx = world.transactions
    assert (tx["transaction_id"].to_numpy() == np.arange(len(tx))).all()
    assert tx["tx_datetime"].is_monotonic_increasing
    time_of_day = tx["tx_time_seconds"] % SECONDS_PER_DAY
    assert time_of_day.between(0, SECONDS_PER_DAY - 1).all()
    assert tx["tx_time_days"].between(0, SMALL.days - 1).all()
    expected = pd.Timestamp(SMALL.start) + pd.to_timedelta(tx["tx_time_seconds"], unit="s")
    assert (tx["tx_datetime"] == expected).all()
    # times of day are centred on noon
    assert abs(time_of_day.mean() - SECONDS_PER_DAY / 2) < 1_000


def test_amounts_are_positive_and_rounded_to_cents(world: SimulatedWorld) -> None:
    for column in ("tx_amount", "genuine_amount"):
        cents = world.transactions[column].to_numpy() * 100
        assert (world.transactions[column] > 0).all()
        np.testing.assert_allclose(cents, np.round(cents), atol=1e-6)


def test_scenario_1_every_large_amount_is_fraud(world: SimulatedWorld) -> None:
    tx = world.transactions
    # amounts as they were when scenario 1 ran (scenario 3 multiplies later)
    large = tx["genuine_amount"] > LARGE_AMOUNT_THRESHOLD
    assert large.any()
    assert (tx.loc[large, "tx_fraud"] == 1).all()
    assert (tx.loc[tx["tx_fraud_scenario"] == 1, "tx_amount"] > LARGE_AMOUNT_THRESHOLD).all()
    genuine = tx[tx["tx_fraud"] == 0]
    assert (genuine["tx_amount"] <= LARGE_AMOUNT_THRESHOLD).all()


def _in_windows(tx: pd.DataFrame, compromised: pd.DataFrame, key: str, days: int) -> pd.Series:
    """Whether each transaction falls in a compromise window [day, day + days) of its key."""
    pairs = tx[["transaction_id", key, "tx_time_days"]].merge(compromised, on=key)
    hit = pairs[
        (pairs["tx_time_days"] >= pairs["day"]) & (pairs["tx_time_days"] < pairs["day"] + days)
    ]
    return tx["transaction_id"].isin(hit["transaction_id"])


def test_scenario_2_every_transaction_on_a_compromised_terminal_is_fraud(
    world: SimulatedWorld,
) -> None:
    tx = world.transactions
    compromised = world.compromised_terminals
    # given two terminals drawn per day
    assert compromised.groupby("day").size().eq(2).all() and len(compromised) == 2 * SMALL.days
    # then every transaction on them during days d..d+27 is fraud (scenario 3 may overwrite the code)
    in_window = _in_windows(tx, compromised, "terminal_id", TERMINAL_COMPROMISE_DAYS)
    assert in_window.sum() > 20
    assert (tx.loc[in_window, "tx_fraud"] == 1).all()
    assert tx.loc[in_window, "tx_fraud_scenario"].isin([2, 3]).all()
    # and scenario 2 marks nothing else
    assert not (tx.loc[~in_window, "tx_fraud_scenario"] == 2).any()


def test_scenario_3_multiplies_a_third_of_compromised_customers_transactions(
    world: SimulatedWorld,
) -> None:
    tx = world.transactions
    compromised = world.compromised_customers
    assert compromised.groupby("day").size().eq(3).all()
    in_window = _in_windows(tx, compromised, "customer_id", CUSTOMER_COMPROMISE_DAYS)
    scenario_3 = tx["tx_fraud_scenario"] == 3
    # only transactions of compromised customers in their 14 days, each amount × 5 (or × 25, ... when
    # overlapping windows picked it again), all fraud
    assert scenario_3.sum() > 10
    assert in_window[scenario_3].all()
    assert (tx.loc[scenario_3, "tx_fraud"] == 1).all()
    ratio = tx.loc[scenario_3, "tx_amount"] / tx.loc[scenario_3, "genuine_amount"]
    power = np.log(ratio) / np.log(5)
    np.testing.assert_allclose(power, np.round(power), atol=0.01)
    assert (np.round(power) >= 1).all()
    unchanged = tx[~scenario_3]
    assert (unchanged["tx_amount"] == unchanged["genuine_amount"]).all()
    # about a third of the exposed transactions
    assert 0.2 < scenario_3.sum() / in_window.sum() < 0.4


def test_scenario_3_picks_int_n_over_3_of_a_single_window() -> None:
    # given one day and three customers: the one draw compromises all of them for that day
    one_day = simulate(SimulationSettings(customers=3, terminals=2000, days=1, seed=2))
    tx = one_day.transactions
    assert sorted(one_day.compromised_customers["customer_id"]) == [0, 1, 2]
    assert len(tx) == 10
    # then exactly int(10 / 3) = 3 of their transactions are scenario-3 frauds, amounts × 5
    scenario_3 = tx[tx["tx_fraud_scenario"] == 3]
    assert len(scenario_3) == 3
    np.testing.assert_allclose(
        scenario_3["tx_amount"], np.round(scenario_3["genuine_amount"] * 5, 2)
    )


def test_reports_arrive_after_the_transaction_within_the_delay(world: SimulatedWorld) -> None:
    tx = world.transactions
    frauds, genuine = tx[tx["tx_fraud"] == 1], tx[tx["tx_fraud"] == 0]
    assert genuine["reported_at"].isna().all()
    delay = frauds["reported_at"] - frauds["tx_datetime"]
    assert (delay >= pd.Timedelta(0)).all()
    assert (delay <= pd.Timedelta(days=SMALL.label_delay_days)).all()
    assert (delay.dt.microseconds == 0).all()  # integer seconds
    reports = world.fraud_reports
    assert len(reports) == len(frauds) and reports["reported_at"].is_monotonic_increasing
    assert list(reports.columns) == ["transaction_id", "reported_at", "fraud_scenario"]


def test_fraud_rate_and_scenario_mix_are_plausible_at_default_density() -> None:
    # given the default customer/terminal density over two months
    world = simulate(SimulationSettings(days=61, seed=11))
    tx = world.transactions
    rate = tx["tx_fraud"].mean()
    counts = tx["tx_fraud_scenario"].value_counts()
    per_day = len(tx) / 61
    # then about 9,700 transactions a day (5000 customers × 2 × P(time inside the day)),
    # a fraud rate below 1 % (lower than the 0.84 % of 183 days: windows are still filling up)
    # and all three scenarios present, scenario 2 the largest
    assert 9_300 < per_day < 10_100
    assert 0.005 < rate < 0.010
    assert counts[2] > counts[3] > counts[1] > 0


def test_start_date_moves_the_calendar_only() -> None:
    base = simulate(SimulationSettings(customers=20, terminals=400, days=3, seed=1))
    moved = simulate(
        SimulationSettings(customers=20, terminals=400, days=3, seed=1, start=dt.date(2024, 2, 28))
    )
    shift = pd.Timestamp("2024-02-28") - pd.Timestamp("2018-04-01")
    assert (moved.transactions["tx_datetime"] - base.transactions["tx_datetime"] == shift).all()
    assert moved.end == dt.date(2024, 3, 1)
