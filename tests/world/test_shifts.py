"""Drift injection in the simulator (ml.world.shifts): the world changes from a day on, and only then."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from ml.platform.errors import ConfigError
from ml.platform.settings import SimulationSettings, load_settings
from ml.world.card_testing import (
    CARD_TEST_BURST,
    CARD_TEST_GAP_SECONDS,
    CARD_TEST_LARGE_AMOUNT,
    SCENARIO_CARD_TESTING,
)
from ml.world.landing import write_landing
from ml.world.landing_checks import validate_landing_file
from ml.world.shifts import drift_start
from ml.world.simulator import TERMINAL_COMPROMISE_DAYS, WORLD_TABLES, SimulatedWorld, simulate

SMALL = {"customers": 300, "terminals": 600, "days": 40, "seed": 5}
DRIFT_DAY = dt.date(2018, 4, 21)  # day index 20: 20 days before, 20 days after
FIRST_DRIFT_INDEX = 20
TABLES = WORLD_TABLES
# Digest of the tables of simulate(SimulationSettings(**SMALL)) made by the simulator before drift
# injection existed (commit 189ef01): a world without drift must stay exactly that world.
STATIONARY_DIGEST = "c8c95e32f859e54a7ec316ac53e6bd2dbf90feb0e251365435deafebf3d3595b"


def _settings(*events: dict, **overrides) -> SimulationSettings:
    return SimulationSettings(**{**SMALL, **overrides}, drift=list(events))


def _event(kind: str, strength: float | None = None, **extra) -> dict:
    return {"kind": kind, "start": DRIFT_DAY, "strength": strength, **extra}


def _digest(world: SimulatedWorld) -> str:
    digest = hashlib.sha256()
    for name in TABLES:
        table = getattr(world, name)
        digest.update(repr([(c, str(t)) for c, t in table.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def stationary() -> SimulatedWorld:
    return simulate(_settings())


def _before(world: SimulatedWorld) -> pd.DataFrame:
    tx = world.transactions
    return tx[tx["tx_time_days"] < FIRST_DRIFT_INDEX]


def _after(world: SimulatedWorld) -> pd.DataFrame:
    tx = world.transactions
    return tx[tx["tx_time_days"] >= FIRST_DRIFT_INDEX]


# --- no drift ------------------------------------------------------------------------------------


def _in_compromise_windows(world: SimulatedWorld) -> pd.Series:
    """Whether each transaction falls in a 28-day window of a compromise of its terminal."""
    tx = world.transactions
    pairs = tx[["transaction_id", "terminal_id", "tx_time_days"]].merge(
        world.compromised_terminals, on="terminal_id"
    )
    hit = pairs[
        (pairs["tx_time_days"] >= pairs["day"])
        & (pairs["tx_time_days"] < pairs["day"] + TERMINAL_COMPROMISE_DAYS)
    ]
    return tx["transaction_id"].isin(hit["transaction_id"])


def test_without_drift_the_world_is_the_one_the_simulator_always_made(
    stationary: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no drift event / when simulated / then the digest of the pre-drift simulator's tables
    assert _digest(stationary) == STATIONARY_DIGEST
    # and the drift code is not even called
    import ml.world.simulator

    def fail(*args, **kwargs):
        raise AssertionError("apply_drift called without drift")

    monkeypatch.setattr(ml.world.simulator, "apply_drift", fail)
    assert _digest(simulate(_settings())) == STATIONARY_DIGEST
    assert stationary.card_tested_customers.empty


@pytest.mark.parametrize(
    "event",
    [
        _event("card_testing", 0),
        _event("terminal_compromise_rate", 2),
        _event("genuine_amount_shift", 1),
        _event("genuine_activity_shift", 1),
    ],
)
def test_neutral_drift_events_change_nothing(stationary: SimulatedWorld, event: dict) -> None:
    # given an event whose strength is the stationary world's own (through the drift code path)
    world = simulate(_settings(event))
    # then every table is the stationary world's
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(world, name), getattr(stationary, name))
    assert drift_start(world.settings) is None


# --- determinism and the past --------------------------------------------------------------------

ALL_KINDS = [
    _event("card_testing", 4),
    _event("terminal_compromise_rate", 8),
    _event("terminal_compromise_rate", 0),
    _event("genuine_amount_shift", 1.5),
    _event("genuine_activity_shift", 1.5),
    _event("genuine_activity_shift", 0.5),
]


def test_same_seed_gives_the_same_drifted_world() -> None:
    settings = _settings(*ALL_KINDS[:2], *ALL_KINDS[3:5])
    a, b = simulate(settings), simulate(settings)
    for name in (*TABLES, "card_tested_customers"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    other = simulate(settings.model_copy(update={"seed": 6}))
    assert (
        not _after(other)["tx_amount"]
        .reset_index(drop=True)
        .equals(_after(a)["tx_amount"].reset_index(drop=True))
    )


def test_one_kind_does_not_change_another_kinds_draws() -> None:
    # given card testing alone, then card testing plus a terminal-rate shift
    alone = simulate(_settings(_event("card_testing", 4)))
    both = simulate(_settings(_event("card_testing", 4), _event("terminal_compromise_rate", 8)))
    # then the same cards are tested with the same bursts
    pd.testing.assert_frame_equal(alone.card_tested_customers, both.card_tested_customers)
    columns = ["tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    tests = [
        w.transactions.loc[w.transactions["tx_fraud_scenario"] == 4, columns] for w in (alone, both)
    ]
    pd.testing.assert_frame_equal(tests[0].reset_index(drop=True), tests[1].reset_index(drop=True))


@pytest.mark.parametrize("event", ALL_KINDS, ids=lambda e: f"{e['kind']}={e['strength']}")
def test_nothing_changes_before_the_drift_date(stationary: SimulatedWorld, event: dict) -> None:
    # when the world drifts from day 20
    world = simulate(_settings(event))
    # then days 0..19 are the stationary world's, to the report times and ids
    pd.testing.assert_frame_equal(_before(world), _before(stationary))
    for name in ("compromised_terminals", "compromised_customers"):
        table, base = getattr(world, name), getattr(stationary, name)
        pd.testing.assert_frame_equal(
            table[table["day"] < FIRST_DRIFT_INDEX], base[base["day"] < FIRST_DRIFT_INDEX]
        )
    # and something changed after it
    assert (
        not _after(world).reset_index(drop=True).equals(_after(stationary).reset_index(drop=True))
    )
    # and the whole horizon stays ordered, with a report for every fraud within the delay
    tx = world.transactions
    assert (tx["transaction_id"].to_numpy() == np.arange(len(tx))).all()
    assert tx["tx_datetime"].is_monotonic_increasing
    assert ((tx["tx_fraud"] == 1) == (tx["tx_fraud_scenario"] > 0)).all()
    frauds = tx[tx["tx_fraud"] == 1]
    delay = frauds["reported_at"] - frauds["tx_datetime"]
    assert delay.between(pd.Timedelta(0), pd.Timedelta(days=world.settings.label_delay_days)).all()
    assert tx.loc[tx["tx_fraud"] == 0, "reported_at"].isna().all()
    assert len(world.fraud_reports) == len(frauds)
    assert (tx["tx_amount"] >= 0.01).all()


# --- each kind does what it says after the date -----------------------------------------------


def _fraud_rate(tx: pd.DataFrame) -> float:
    return float(tx["tx_fraud"].mean())


def test_card_testing_adds_bursts_of_small_frauds_then_a_large_one(
    stationary: SimulatedWorld,
) -> None:
    # given 4 cards tested a day from day 20
    world = simulate(_settings(_event("card_testing", 4)))
    tx = world.transactions.merge(world.customers, on="customer_id").merge(
        world.terminals, on="terminal_id"
    )
    tests = tx[tx["tx_fraud_scenario"] == SCENARIO_CARD_TESTING].sort_values("tx_datetime")
    # then 4 cards a day, from the drift date only
    tested = world.card_tested_customers
    assert tested.groupby("day").size().to_dict() == dict.fromkeys(range(FIRST_DRIFT_INDEX, 40), 4)
    assert tests["tx_time_days"].min() == FIRST_DRIFT_INDEX
    # and each burst: 3-8 small amounts under 5 a few minutes apart, then one large, the same day,
    # all at terminals the customer never uses, all fraud
    assert (tests["tx_fraud"] == 1).all()
    distance = np.hypot(
        tests["x_customer"] - tests["x_terminal"], tests["y_customer"] - tests["y_terminal"]
    )
    assert (distance > world.settings.radius).all()
    bursts = 0
    for (day, _customer), burst in tests.groupby(["tx_time_days", "customer_id"]):
        amounts = burst["tx_amount"].to_numpy()
        small, large = amounts[:-1], amounts[-1]
        assert CARD_TEST_BURST[0] <= len(small) <= CARD_TEST_BURST[1]
        assert (small < 5).all() and large >= CARD_TEST_LARGE_AMOUNT[0]
        gaps = np.diff(burst["tx_time_seconds"].to_numpy()[:-1])
        assert ((gaps >= CARD_TEST_GAP_SECONDS[0]) & (gaps <= CARD_TEST_GAP_SECONDS[1])).all()
        assert (burst["tx_time_days"] == day).all()
        bursts += 1
    assert bursts == len(tested)
    # measured: the fraud rate after the date rises, the one before does not move
    assert _fraud_rate(_before(world)) == _fraud_rate(_before(stationary))
    assert _fraud_rate(_after(world)) > _fraud_rate(_after(stationary)) + 0.02
    # and the new frauds are reported like the others
    reports = world.fraud_reports
    assert (reports["fraud_scenario"] == SCENARIO_CARD_TESTING).sum() == len(tests)


def test_terminal_compromise_rate_compromises_more_terminals(stationary: SimulatedWorld) -> None:
    world = simulate(_settings(_event("terminal_compromise_rate", 8)))
    per_day = world.compromised_terminals.groupby("day").size()
    assert (per_day[per_day.index < FIRST_DRIFT_INDEX] == 2).all()
    assert (per_day[per_day.index >= FIRST_DRIFT_INDEX] == 8).all()
    assert not world.compromised_terminals.duplicated().any()
    # every transaction in a 28-day window of a compromised terminal is fraud
    tx = world.transactions
    in_window = _in_compromise_windows(world)
    assert tx.loc[in_window, "tx_fraud_scenario"].isin([2, 3]).all()
    assert not (tx.loc[~in_window, "tx_fraud_scenario"] == 2).any()
    # measured: scenario-2 frauds after the date grow by more than half (windows opened before
    # the date are shared; 8 new terminals a day instead of 2 on 600 terminals)
    after = _after(world)["tx_fraud_scenario"].eq(2).sum()
    assert after > 1.5 * _after(stationary)["tx_fraud_scenario"].eq(2).sum()


def test_terminal_compromise_rate_zero_stops_new_compromises(stationary: SimulatedWorld) -> None:
    world = simulate(_settings(_event("terminal_compromise_rate", 0)))
    assert world.compromised_terminals["day"].max() == FIRST_DRIFT_INDEX - 1
    # windows opened before the date run their course; later ones never open
    assert (
        _after(world)["tx_fraud_scenario"].eq(2).sum()
        < _after(stationary)["tx_fraud_scenario"].eq(2).sum()
    )


def test_genuine_amount_shift_multiplies_genuine_amounts_only(stationary: SimulatedWorld) -> None:
    world = simulate(_settings(_event("genuine_amount_shift", 1.5)))
    after, base = _after(world), _after(stationary)
    # the same transactions and labels; genuine amounts x 1.5, fraud amounts unchanged
    pd.testing.assert_series_equal(after["tx_fraud"], base["tx_fraud"])
    genuine = base["tx_fraud"] == 0
    np.testing.assert_allclose(
        after.loc[genuine, "tx_amount"], np.round(base.loc[genuine, "tx_amount"] * 1.5, 2)
    )
    pd.testing.assert_series_equal(
        after.loc[~genuine, "tx_amount"], base.loc[~genuine, "tx_amount"]
    )
    # measured: the mean genuine amount after / before the date is about the factor
    before = _before(world)
    ratio = (
        after.loc[genuine, "tx_amount"].mean()
        / before.loc[before["tx_fraud"] == 0, "tx_amount"].mean()
    )
    assert 1.4 < ratio < 1.6
    # and large genuine amounts now exist (the "amount > 220 is fraud" rule no longer holds)
    assert (after.loc[genuine, "tx_amount"] > 220).any()


@pytest.mark.parametrize(("factor", "low", "high"), [(1.5, 1.4, 1.6), (0.5, 0.45, 0.55)])
def test_genuine_activity_shift_scales_transactions_per_day(
    stationary: SimulatedWorld, factor: float, low: float, high: float
) -> None:
    world = simulate(_settings(_event("genuine_activity_shift", factor)))
    # measured: transactions after the date / the stationary world's on the same days
    ratio = len(_after(world)) / len(_after(stationary))
    assert low < ratio < high
    # the fraud rules apply to the new transactions: the fraud rate stays about the same
    assert abs(_fraud_rate(_after(world)) - _fraud_rate(_after(stationary))) < 0.02
    tx = world.transactions
    assert (tx.loc[_in_compromise_windows(world), "tx_fraud"] == 1).all()


def test_a_drift_with_an_end_stops_after_it(stationary: SimulatedWorld) -> None:
    world = simulate(_settings(_event("card_testing", 3, end=dt.date(2018, 4, 25))))
    days = world.transactions.loc[world.transactions["tx_fraud_scenario"] == 4, "tx_time_days"]
    assert set(days) == set(range(FIRST_DRIFT_INDEX, 25))
    late = world.transactions[world.transactions["tx_time_days"] >= 25]
    assert (late["tx_fraud_scenario"] != 4).all()


def test_drifted_landing_files_meet_the_contract(tmp_path) -> None:
    world = simulate(_settings(*ALL_KINDS[:2], ALL_KINDS[3], ALL_KINDS[4], days=25))
    result = write_landing(world, tmp_path)
    assert all(not validate_landing_file(p) for p in result.files)
    assert result.frauds_by_scenario[SCENARIO_CARD_TESTING] > 0
    assert result.transactions == len(world.transactions)


# --- settings ------------------------------------------------------------------------------------


def test_settings_accept_one_event_or_a_list_and_fill_default_strengths(tmp_path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("simulation:\n  drift:\n    kind: card_testing\n    start: 2018-05-01\n")
    settings = load_settings(one)
    assert [(e.kind, e.start, e.strength) for e in settings.simulation.drift] == [
        ("card_testing", dt.date(2018, 5, 1), 5.0)
    ]
    many = tmp_path / "many.yaml"
    many.write_text(
        "simulation:\n  drift:\n"
        "    - {kind: genuine_amount_shift, start: 2018-05-01, strength: 2}\n"
        "    - {kind: terminal_compromise_rate, start: 2018-06-01, end: 2018-06-30}\n"
    )
    drift = load_settings(many).simulation.drift
    assert [(e.kind, e.strength, e.end) for e in drift] == [
        ("genuine_amount_shift", 2.0, None),
        ("terminal_compromise_rate", 6.0, dt.date(2018, 6, 30)),
    ]
    assert drift_start(load_settings(many).simulation) == dt.date(2018, 5, 1)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"kind": "card_testing", "start": "2018-05-01", "strength": 2.5}, "whole number"),
        (
            {"kind": "genuine_amount_shift", "start": "2018-05-01", "strength": 0},
            "factor in (0, 10]",
        ),
        ({"kind": "meteor_strike", "start": "2018-05-01"}, "Input should be 'card_testing'"),
        ({"kind": "card_testing", "start": "2019-01-01"}, "outside the simulated days"),
        ({"kind": "card_testing", "start": "2018-05-01", "end": "2018-04-30"}, "before its start"),
    ],
)
def test_invalid_drift_settings_end_in_one_line(event: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid setting simulation") as error:
        load_settings(simulation={"drift": event})
    assert message in str(error.value)
    assert "\n" not in str(error.value)
