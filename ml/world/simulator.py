"""Card-transaction simulator, after the Fraud Detection Handbook (Le Borgne et al., chapter 3).

An independent, vectorised numpy implementation of the simulator described in the handbook's
chapter "Transaction data simulator":

* customers live at (x, y) ~ U(0, 100)², spend ``mean_amount ~ U(5, 100)`` on average with
  ``std_amount = mean_amount / 2``, and make ``mean_nb_tx_per_day ~ U(0, 4)`` transactions a day;
* terminals live at (x, y) ~ U(0, 100)²; a customer only uses terminals within ``radius`` of home;
* per customer and day: ``Poisson(mean_nb_tx_per_day)`` transactions, each at a time of day
  ~ N(43200 s, 20000 s) (dropped outside the day), for an amount ~ N(mean, std) (redrawn from
  U(0, 2·mean) when negative — or when it would round to 0.00, which the landing contract
  forbids —, rounded to cents), at a terminal drawn uniformly among the
  customer's terminals;
* three fraud scenarios, applied in order (a later one overwrites the scenario code of an
  earlier one): (1) every amount > 220 is fraud; (2) each day two random terminals are
  compromised for 28 days: all their transactions are fraud; (3) each day three random customers
  are compromised for 14 days: a third of their transactions get their amount × 5 and are fraud.
  Windows are applied day after day, so overlapping ones compound (an amount can be × 25);
* every fraud is reported ``U{0 .. label_delay_days·86400}`` seconds after the transaction.

With ``settings.drift`` events the world changes from a day on (a new card-testing fraud
scenario 4, more compromised terminals, genuine amounts or activity scaled): see ml/drift.py. Without
drift events, nothing of the above changes.

The world depends only on the settings: each part draws from its own child of
``SeedSequence(seed)``, so e.g. changing ``label_delay_days`` changes only the report times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ml.platform.settings import SimulationSettings
from ml.world.draws import Drawn, daily_counts, draw_transactions
from ml.world.handbook import (
    AREA_SIZE,
    CUSTOMER_COMPROMISE_DAYS,
    CUSTOMER_FRAUD_AMOUNT_FACTOR,
    CUSTOMER_FRAUD_SHARE_DIVISOR,
    LARGE_AMOUNT_THRESHOLD,
    SCENARIO_CUSTOMER,
    SCENARIO_LARGE_AMOUNT,
    SCENARIO_TERMINAL,
    SECONDS_PER_DAY,
    STREAMS,
    TERMINAL_COMPROMISE_DAYS,
    compromised_per_day,
)
from ml.world.ledger import ROW_BLOCK, Ledger, time_order
from ml.world.neighbours import TerminalGrid, terminals_within_radius
from ml.world.shifts import apply_drift

#: The frames of a simulated world that define it (its drift tables aside).
WORLD_TABLES = (
    "customers",
    "terminals",
    "transactions",
    "compromised_terminals",
    "compromised_customers",
)


@dataclass(frozen=True)
class SimulatedWorld:
    """Everything the simulator made.

    ``customers``: one row per customer — customer_id, x_customer, y_customer, mean_amount,
    std_amount, mean_nb_tx_per_day, nb_terminals (terminals within the radius).

    ``terminals``: one row per terminal — terminal_id, x_terminal, y_terminal.

    ``transactions``: one row per transaction, sorted by transaction_id (= by time) —
    transaction_id, tx_datetime (datetime64[us]), tx_time_seconds and tx_time_days (since the
    start), customer_id, terminal_id, tx_amount, tx_fraud (0/1), tx_fraud_scenario (0-3; 4 with
    the card-testing drift), reported_at (when the fraud is reported; NaT for genuine
    transactions) and genuine_amount (the amount before scenario 3 multiplied it).

    ``compromised_terminals`` / ``compromised_customers``: one row per (day, terminal/customer)
    drawn by scenario 2 / 3 on that day (simulation diagnostics, never landed).

    ``card_tested_customers``: one row per (day, customer_id) whose card was tested that day by
    the card-testing drift (scenario 4; empty without that drift).

    ``ledger``: the transactions, compact (ml/world/ledger.py); ``transactions`` is built from it
    on first use (the landing writer reads the ledger, a day at a time).
    """

    settings: SimulationSettings
    customers: pd.DataFrame
    terminals: pd.DataFrame
    ledger: Ledger
    compromised_terminals: pd.DataFrame
    compromised_customers: pd.DataFrame
    card_tested_customers: pd.DataFrame = field(
        default_factory=lambda: _compromise_table(np.empty((0, 0), dtype=np.int64), "customer_id")
    )

    @property
    def start(self) -> dt.date:
        return self.settings.start

    @property
    def end(self) -> dt.date:
        """Last simulated day (inclusive)."""
        return self.settings.start + dt.timedelta(days=self.settings.days - 1)

    @cached_property
    def transactions(self) -> pd.DataFrame:
        return self.ledger.frame()

    @property
    def transactions_materialized(self) -> bool:
        """Whether ``transactions`` was built: from then on it is the world (callers such as
        tests may edit it), and the landing writer and ``fraud_reports`` read it."""
        return "transactions" in self.__dict__

    @property
    def fraud_reports(self) -> pd.DataFrame:
        """One row per fraud report (one per fraudulent transaction), ordered by report time
        (transaction_id, reported_at, fraud_scenario).

        Includes reports dated after the horizon; the landing writer holds those back.
        """
        if not self.transactions_materialized:
            return self.ledger.fraud_reports()
        frauds = self.transactions.loc[
            self.transactions["tx_fraud"] == 1,
            ["transaction_id", "reported_at", "tx_fraud_scenario"],
        ]
        reports = frauds.rename(columns={"tx_fraud_scenario": "fraud_scenario"})
        return reports.sort_values(["reported_at", "transaction_id"], kind="stable").reset_index(
            drop=True
        )


def simulate(settings: SimulationSettings | None = None) -> SimulatedWorld:
    """Simulate customers, terminals and labelled transactions over the whole horizon."""
    settings = settings or SimulationSettings()
    streams = dict(
        zip(
            STREAMS,
            (
                np.random.default_rng(s)
                for s in np.random.SeedSequence(settings.seed).spawn(len(STREAMS))
            ),
            strict=True,
        )
    )
    customers = _customer_profiles(settings.customers, streams["customers"])
    terminals = _terminal_profiles(settings.terminals, streams["terminals"])
    drawn = _transactions(customers, terminals, settings, streams["transactions"])
    customers["nb_terminals"] = drawn.nb_terminals
    order, day_bounds = time_order(drawn.seconds, settings.days)
    scenario = np.zeros(len(order), dtype=np.int8)
    compromised_terminals, compromised_customers, genuine = _add_frauds(
        drawn, scenario, settings, streams
    )
    high = settings.label_delay_days * SECONDS_PER_DAY
    fields = {
        "start": settings.start,
        "seconds": drawn.seconds,
        "customer": drawn.customer,
        "terminal": drawn.terminal,
        "amount": drawn.amount,
        "scenario": scenario,
        "order": order,
        "day_bounds": day_bounds,
        "genuine_rows": genuine[0],
        "genuine_amounts": genuine[1],
    }
    drift_tables = {}
    if not settings.drift:
        fields["frauds"], delays = _fraud_delays(scenario, order, high, streams["reports"])
        fields["report_seconds"] = drawn.seconds[order[fields["frauds"]]] + delays
        ledger = Ledger(**fields)
    else:
        # drift works on full time-ordered arrays, as the simulator made them before it was compact
        tx = Ledger(**fields, frauds=np.empty(0, np.int64), report_seconds=np.empty(0, np.int64))
        tx = tx.time_ordered()
        genuine_amount = tx.pop("genuine")
        delays = streams["reports"].integers(0, high, size=len(tx["time"]), endpoint=True)
        offsets, neighbours = _terminals_within_radius(customers, terminals, settings.radius)
        drifted = apply_drift(
            tx,
            genuine_amount=genuine_amount,
            delays=delays,
            compromised_terminals=compromised_terminals,
            compromised_customers=compromised_customers,
            customers=customers,
            offsets=offsets,
            neighbours=neighbours,
            settings=settings,
        )
        ledger = Ledger.from_time_ordered(
            settings.start, settings.days, drifted.tx, drifted.genuine_amount, drifted.delays
        )
        compromised_terminals = drifted.compromised_terminals
        drift_tables["card_tested_customers"] = drifted.card_tested_customers
    return SimulatedWorld(
        settings=settings,
        customers=customers,
        terminals=terminals,
        ledger=ledger,
        compromised_terminals=compromised_terminals,
        compromised_customers=compromised_customers,
        **drift_tables,
    )


def _customer_profiles(n: int, rng: np.random.Generator) -> pd.DataFrame:
    xy = rng.uniform(0, AREA_SIZE, size=(n, 2))
    mean_amount = rng.uniform(5, 100, size=n)
    mean_nb_tx_per_day = rng.uniform(0, 4, size=n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "x_customer": xy[:, 0],
            "y_customer": xy[:, 1],
            "mean_amount": mean_amount,
            "std_amount": mean_amount / 2,
            "mean_nb_tx_per_day": mean_nb_tx_per_day,
        }
    )


def _terminal_profiles(n: int, rng: np.random.Generator) -> pd.DataFrame:
    xy = rng.uniform(0, AREA_SIZE, size=(n, 2))
    return pd.DataFrame(
        {
            "terminal_id": np.arange(n, dtype=np.int64),
            "x_terminal": xy[:, 0],
            "y_terminal": xy[:, 1],
        }
    )


def _xy(customers: pd.DataFrame, terminals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return (
        customers[["x_customer", "y_customer"]].to_numpy(),
        terminals[["x_terminal", "y_terminal"]].to_numpy(),
    )


def _terminals_within_radius(
    customers: pd.DataFrame, terminals: pd.DataFrame, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency: customer c may use terminals ``neighbours[offsets[c]:offsets[c + 1]]``."""
    return terminals_within_radius(*_xy(customers, terminals), radius)


def _transactions(
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> Drawn:
    """Genuine transactions in generation order (customer, day, draw), each customer's terminals
    found when its picks are drawn."""
    customer_xy, terminal_xy = _xy(customers, terminals)
    grid = TerminalGrid(terminal_xy, settings.radius)
    counts = daily_counts(customers["mean_nb_tx_per_day"].to_numpy(), settings.days, rng)
    return draw_transactions(
        customers["mean_amount"].to_numpy(),
        customers["std_amount"].to_numpy(),
        counts,
        np.arange(settings.days),
        lambda first, last: grid.within_radius(customer_xy[first:last]),
        settings.terminals,
        rng,
    )


def _add_frauds(
    tx: Drawn,
    scenario: np.ndarray,
    settings: SimulationSettings,
    streams: dict[str, np.random.Generator],
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """Apply the three fraud scenarios in place (amounts, ``scenario``), in order, block by block
    of rows; return who was compromised when, and the rows scenario 3 multiplied with their
    genuine amounts."""
    blocks = [slice(first, first + ROW_BLOCK) for first in range(0, len(scenario), ROW_BLOCK)]

    # (1) Large amounts.
    for rows in blocks:
        scenario[rows][tx.amount[rows] > LARGE_AMOUNT_THRESHOLD] = SCENARIO_LARGE_AMOUNT

    terminals_per_day, customers_per_day = compromised_per_day(settings)

    # (2) Compromised terminals: (terminal, day) cells covered by some 28-day window.
    rng = streams["terminal_frauds"]
    per_day = terminals_per_day
    terminals = np.stack(
        [rng.choice(settings.terminals, size=per_day, replace=False) for _ in range(settings.days)]
    )
    compromised = np.zeros((settings.terminals, settings.days), dtype=bool)
    for d, chosen in enumerate(terminals):
        compromised[chosen, d : d + TERMINAL_COMPROMISE_DAYS] = True
    for rows in blocks:
        on = compromised[tx.terminal[rows], tx.seconds[rows] // SECONDS_PER_DAY]
        scenario[rows][on] = SCENARIO_TERMINAL
    del compromised

    # (3) Compromised customers, day after day so that overlapping windows compound. Rows are
    # by customer, then day: a customer's window is one range of rows.
    rng = streams["customer_frauds"]
    per_day = customers_per_day
    per_customer = np.zeros(settings.customers, dtype=np.int64)
    for rows in blocks:  # (a searchsorted of the narrow ids would make an int64 copy of them)
        per_customer += np.bincount(tx.customer[rows], minlength=settings.customers)
    bounds = np.concatenate([[0], np.cumsum(per_customer)])
    customers = np.empty((settings.days, per_day), dtype=np.int64)
    multiplied, genuine = [], []
    for d in range(settings.days):
        customers[d] = rng.choice(settings.customers, size=per_day, replace=False)
        rows = []
        for c in customers[d]:
            lo, hi = bounds[c], bounds[c + 1]
            first, last = np.searchsorted(
                tx.seconds[lo:hi] // SECONDS_PER_DAY, [d, d + CUSTOMER_COMPROMISE_DAYS]
            )
            rows.append(np.arange(lo + first, lo + last))
        window = np.concatenate(rows)
        frauds = rng.choice(window, size=len(window) // CUSTOMER_FRAUD_SHARE_DIVISOR, replace=False)
        multiplied.append(frauds)
        genuine.append(tx.amount[frauds])
        tx.amount[frauds] = np.round(tx.amount[frauds] * CUSTOMER_FRAUD_AMOUNT_FACTOR, 2)
        scenario[frauds] = SCENARIO_CUSTOMER
    # a row's genuine amount is the one before its first multiplication
    rows, first = np.unique(np.concatenate(multiplied), return_index=True)
    return (
        _compromise_table(terminals, "terminal_id"),
        _compromise_table(customers, "customer_id"),
        (rows, np.concatenate(genuine)[first]),
    )


def _fraud_delays(
    scenario: np.ndarray, order: np.ndarray, high: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Report delays ``U{0 .. high}`` seconds, drawn for every transaction in time order (block by
    block, the same numbers as at once): the time positions of the frauds and their delays."""
    frauds, delays = [], []
    for first in range(0, len(order), ROW_BLOCK):
        rows = order[first : first + ROW_BLOCK]
        drawn = rng.integers(0, high, size=len(rows), endpoint=True)
        fraud = np.flatnonzero(scenario[rows])
        frauds.append(first + fraud)
        delays.append(drawn[fraud])
    return (
        np.concatenate(frauds or [np.empty(0, np.int64)]),
        np.concatenate(delays or [np.empty(0, np.int64)]),
    )


def _compromise_table(chosen: np.ndarray, column: str) -> pd.DataFrame:
    """One row per (day, id) from a days × per-day array of drawn ids."""
    days, per_day = chosen.shape
    return pd.DataFrame(
        {
            "day": np.repeat(np.arange(days, dtype=np.int64), per_day),
            column: chosen.ravel().astype(np.int64),
        }
    )
