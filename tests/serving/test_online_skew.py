"""Zero training/serving skew: a day replayed through the online state gives every transaction
the features the gold table gives it.

A small simulated world lands through day D-1 and dbt builds the medallion; the online state
is bootstrapped from that warehouse's silver tables; day D's landing files (transactions, and
the fraud reports reported that day, interleaved at their reported_at) are fed in time order;
then day D lands, dbt builds it (incrementally) and each of D's transactions must have the
same 21 features online and in gold.transaction_features (counts exactly, floats within 1e-9).

The world is made to contain what the rules are about: reports arriving up to 20 days after
their transaction (some frauds in a terminal window are unknown at t; some of day D's reports
are of D's own transactions, counted by the later ones), a card's transactions in the same
second, and on one terminal three transactions in one second, the middle one a fraud reported
that very second (the next one counts it, the previous one does not). Mutating a rule on the
online side only (the terminal delay, the tie rule) must make the comparison fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from support.serving import REPO_ROOT, load_reference, replay

from ml.platform.dbt import run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import SimulationSettings, load_settings
from ml.serving.bootstrap import (
    bootstrap_from_frames,
    bootstrap_from_warehouse,
    read_bootstrap_rows,
)
from ml.serving.memory import InMemoryFeatureState, _Card
from ml.serving.state import FeatureState
from ml.serving.windows import FeatureWindows
from ml.world.landing import FRAUD_REPORTS, TRANSACTIONS, write_landing
from ml.world.simulator import SimulatedWorld, simulate

pytestmark = pytest.mark.slow

DAYS = 40  # day D = the last one: 39 days of history before it (look-back: 37)
LABEL_DELAY_DAYS = 20
CARD_TIES_PER_DAY = 2


@dataclass
class SkewDay:
    day: dt.date
    state: FeatureState  # bootstrapped from the warehouse built through D - 1
    bootstrap_rows: tuple[pd.DataFrame, pd.DataFrame]  # what it read from silver
    transactions: pd.DataFrame  # day D's landing files
    reports: pd.DataFrame
    gold: pd.DataFrame  # day D's rows of gold.transaction_features, built after D landed
    terminal_tie: tuple[int, int, int]  # (lower id, the fraud, higher id) in one second


def card_ties(world: SimulatedWorld, per_day: int, seed: int) -> None:
    """Give ``per_day`` transactions a day the second of the card's previous one that day."""
    tx = world.transactions
    previous = tx.groupby(["customer_id", "tx_time_days"])["transaction_id"].shift()
    rng = np.random.default_rng(seed)
    for _, candidates in tx.index[previous.notna()].to_series().groupby(tx["tx_time_days"]):
        chosen = rng.choice(
            candidates.to_numpy(), size=min(per_day, len(candidates)), replace=False
        )
        earlier = tx.set_index("transaction_id").loc[previous[chosen].astype("int64")]
        for column in ("tx_datetime", "tx_time_seconds"):
            tx.loc[chosen, column] = earlier[column].to_numpy()


def terminal_tie(world: SimulatedWorld, day: int) -> tuple[int, int, int]:
    """On ``day``, move two genuine transactions (a lower and a higher id) into the second and
    onto the terminal of a fraud, and report that fraud in that very second."""
    tx = world.transactions
    on_day = tx["tx_time_days"] == day
    fraud = tx.index[on_day & (tx["tx_fraud"] == 1)][
        len(tx.index[on_day & (tx["tx_fraud"] == 1)]) // 2
    ]
    genuine = tx.index[on_day & (tx["tx_fraud"] == 0)]
    lower, higher = genuine[genuine < fraud][-1], genuine[genuine > fraud][0]
    for moved in (lower, higher):
        for column in ("tx_datetime", "tx_time_seconds", "terminal_id"):
            tx.loc[moved, column] = tx.loc[fraud, column]
    tx.loc[fraud, "reported_at"] = tx.loc[fraud, "tx_datetime"]
    ids = tx.loc[[lower, fraud, higher], "transaction_id"].tolist()
    return ids[0], ids[1], ids[2]


@pytest.fixture(scope="module")
def skew_day(
    tmp_path_factory: pytest.TempPathFactory, windows: FeatureWindows
) -> Iterator[SkewDay]:
    workdir = tmp_path_factory.mktemp("online-skew")
    landing = workdir / "landing"
    env = {
        "FRAUDOPS_DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
        "FRAUDOPS_LANDING_ROOT": str(landing),
        "DBT_LOG_PATH": str(workdir / "logs"),
    }
    world = simulate(
        SimulationSettings(
            customers=400, terminals=300, days=DAYS, seed=5, label_delay_days=LABEL_DELAY_DAYS
        )
    )
    card_ties(world, CARD_TIES_PER_DAY, seed=5)
    tie = terminal_tie(world, DAYS - 1)
    day = world.end

    def build() -> None:
        run_dbt(
            ["run", "--select", "+transaction_features"],
            project_dir=REPO_ROOT,
            target_path=workdir / "target",
            env=env,
        )

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings(
            dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)}
        )
        write_landing(world, landing, to_day=day - dt.timedelta(days=1))
        build()
        with Runtime.build(settings).warehouse(read_only=True) as warehouse:
            state = bootstrap_from_warehouse(warehouse, windows)
            bootstrap_rows = read_bootstrap_rows(warehouse, windows)
        write_landing(world, landing, from_day=day, to_day=day)
        build()
        with Runtime.build(settings).warehouse(read_only=True) as warehouse:
            gold = warehouse.read(
                "gold.transaction_features", date_column="tx_date", start=day, end=day
            )
    yield SkewDay(
        day=day,
        state=state,
        bootstrap_rows=bootstrap_rows,
        transactions=pq.read_table(TRANSACTIONS.file_path(landing, day)).to_pandas(),
        reports=pq.read_table(FRAUD_REPORTS.file_path(landing, day)).to_pandas(),
        gold=gold,
        terminal_tie=tie,
    )


def compare(online: pd.DataFrame, gold: pd.DataFrame, windows: FeatureWindows):
    """The reference's comparison on the 21 features (counts exactly, floats within 1e-9);
    online columns are taken by position, so a mutated delay still lines up with gold's names."""
    online = online.set_axis(["transaction_id", *windows.columns()], axis=1)
    return load_reference().compare(online, gold, list(windows.columns()))


def test_online_features_equal_the_gold_table_for_a_replayed_day(
    skew_day: SkewDay, windows: FeatureWindows
) -> None:
    # given a state bootstrapped from the warehouse built through day D - 1
    state = skew_day.state
    assert state.size().transactions > 0 and state.as_of < dt.datetime.combine(
        skew_day.day, dt.time()
    )
    # when day D's transactions are served and its reports recorded, in time order
    online = replay(state, skew_day.transactions, skew_day.reports)
    # then every transaction of day D has gold's 21 features
    comparison = compare(online, skew_day.gold, windows)
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
    assert comparison.rows == len(skew_day.transactions) == len(skew_day.gold) > 400


def test_the_replayed_day_holds_ties_empty_windows_and_late_reports(
    skew_day: SkewDay, windows: FeatureWindows
) -> None:
    # given day D in gold
    gold = skew_day.gold.set_index("transaction_id")
    tx, reports = skew_day.transactions, skew_day.reports
    # then some cards have several transactions in one second ...
    assert (tx.groupby(["customer_id", "tx_datetime"]).size() > 1).sum() >= CARD_TIES_PER_DAY
    # ... on the crafted terminal tie, the fraud reported in its own second counts for the
    # transaction after it, not the one before
    lower, _fraud, higher = skew_day.terminal_tie
    reported = "terminal_id_reported_frauds_7day_window"
    assert gold.loc[higher, reported] == gold.loc[lower, reported] + 1
    # ... some windows are empty (a terminal's delayed day; a card's only transaction of a day)
    assert (gold["terminal_id_nb_tx_1day_window"] == 0).any()
    assert (gold["customer_id_nb_tx_1day_window"] == 1).any()
    # ... some of D's reports are of D's transactions, and some of transactions more than the
    # terminal delay before D (frauds in D's terminal windows, unknown until then)
    report_tx = reports.merge(
        skew_day.bootstrap_rows[0][["transaction_id", "tx_datetime"]], how="left"
    )
    assert reports["transaction_id"].isin(tx["transaction_id"]).sum() >= 1
    late = report_tx["tx_datetime"] < pd.Timestamp(
        skew_day.day - dt.timedelta(days=windows.delay_days)
    )
    assert late.sum() >= 1
    # ... and knowing every label at once would change some features: the rule is not vacuous
    transactions, silver_reports = skew_day.bootstrap_rows
    hindsight_reports = pd.concat([silver_reports[["transaction_id", "reported_at"]], reports])
    hindsight_reports["reported_at"] = pd.Timestamp("1970-01-01")
    state = bootstrap_from_frames(InMemoryFeatureState(windows), transactions, hindsight_reports)
    hindsight = replay(state, tx, reports.iloc[:0])
    assert not compare(hindsight, skew_day.gold, windows).equal


class TiesIgnored(InMemoryFeatureState):
    """A mutant: a card's same-second transactions all in each other's windows."""

    @staticmethod
    def _customer_end(card: _Card, second: int, tx_id: int) -> int:
        from bisect import bisect_right

        return bisect_right(card.seconds, second)


@pytest.mark.parametrize(
    "mutant",
    [
        pytest.param(
            lambda w: InMemoryFeatureState(dataclasses.replace(w, delay_days=6)), id="delay-6"
        ),
        pytest.param(
            lambda w: InMemoryFeatureState(dataclasses.replace(w, delay_days=8, lookback_days=38)),
            id="delay-8",
        ),
        pytest.param(TiesIgnored, id="ties-ignored"),
    ],
)
def test_a_rule_changed_online_only_shows_as_skew(
    skew_day: SkewDay, windows: FeatureWindows, mutant
) -> None:
    # given a state whose rules differ from the SQL's, bootstrapped from the same silver rows
    state = bootstrap_from_frames(mutant(windows), *skew_day.bootstrap_rows)
    # when day D is replayed through it
    online = replay(state, skew_day.transactions, skew_day.reports)
    # then the skew test's comparison fails
    assert not compare(online, skew_day.gold, windows).equal
