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

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ml.platform.settings import SimulationSettings
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
    draw_transactions,
)
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
    """

    settings: SimulationSettings
    customers: pd.DataFrame
    terminals: pd.DataFrame
    transactions: pd.DataFrame
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

    @property
    def fraud_reports(self) -> pd.DataFrame:
        """One row per fraud report (one per fraudulent transaction), ordered by report time.

        Includes reports dated after the horizon; the landing writer holds those back.
        """
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
    offsets, neighbours = _terminals_within_radius(customers, terminals, settings.radius)
    customers["nb_terminals"] = np.diff(offsets)

    tx = _transactions(customers, offsets, neighbours, settings.days, streams["transactions"])
    genuine_amount = tx["amount"].copy()
    compromised_terminals, compromised_customers = _add_frauds(tx, settings, streams)

    delays = streams["reports"].integers(
        0, settings.label_delay_days * SECONDS_PER_DAY, size=len(tx["time"]), endpoint=True
    )
    drift_tables = {}
    if settings.drift:
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
        tx, genuine_amount, delays = drifted.tx, drifted.genuine_amount, drifted.delays
        compromised_terminals = drifted.compromised_terminals
        drift_tables["card_tested_customers"] = drifted.card_tested_customers
    start_us = np.datetime64(settings.start, "us")
    seconds = tx["time"]
    reported_seconds = seconds + delays
    reported_at = start_us + reported_seconds.astype("timedelta64[s]")
    reported_at[tx["fraud"] == 0] = np.datetime64("NaT")

    transactions = pd.DataFrame(
        {
            "transaction_id": np.arange(len(seconds), dtype=np.int64),
            "tx_datetime": start_us + seconds.astype("timedelta64[s]"),
            "tx_time_seconds": seconds,
            "tx_time_days": seconds // SECONDS_PER_DAY,
            "customer_id": tx["customer"],
            "terminal_id": tx["terminal"],
            "tx_amount": tx["amount"],
            "tx_fraud": tx["fraud"],
            "tx_fraud_scenario": tx["scenario"],
            "reported_at": reported_at,
            "genuine_amount": genuine_amount,
        },
        copy=False,  # the arrays are ours: skip pandas' consolidating copy
    )
    return SimulatedWorld(
        settings=settings,
        customers=customers,
        terminals=terminals,
        transactions=transactions,
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


def _terminals_within_radius(
    customers: pd.DataFrame, terminals: pd.DataFrame, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency: customer c may use terminals ``neighbours[offsets[c]:offsets[c + 1]]``."""
    customer_tree = cKDTree(customers[["x_customer", "y_customer"]].to_numpy())
    terminal_tree = cKDTree(terminals[["x_terminal", "y_terminal"]].to_numpy())
    pairs = customer_tree.sparse_distance_matrix(terminal_tree, radius, output_type="ndarray")
    # Pairs grow with customers x terminals (37.6M in a world of 10x the default customers and
    # terminals): sort one int64 key (customer, terminal) in place rather than lexsort the two
    # columns (2.8 s instead of 11.1 s there), and drop the distances early.
    key = pairs["i"].astype(np.int64) * len(terminals) + pairs["j"]
    del pairs
    key.sort()
    customer_of_pair, neighbours = np.divmod(key, len(terminals))
    del key
    counts = np.bincount(customer_of_pair, minlength=len(customers))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, neighbours


def _transactions(
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    days: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Genuine transactions, ordered by time then generation order (customer, day, draw).

    ``by_customer`` holds the time-order positions of the transactions in generation order.
    """
    n_customers = len(customers)
    counts = rng.poisson(
        customers["mean_nb_tx_per_day"].to_numpy()[:, None], size=(n_customers, days)
    )
    customer, day, time_of_day, amount, pick = draw_transactions(customers, offsets, counts, rng)
    terminal = neighbours[offsets[customer] + pick]
    seconds = day * SECONDS_PER_DAY + time_of_day
    order = np.argsort(seconds, kind="stable")
    # Generation order lists transactions customer by customer, day by day; its inverse
    # permutation gives their positions in time order (used by scenario 3 to find windows).
    by_customer = np.empty_like(order)
    by_customer[order] = np.arange(len(order))
    return {
        "by_customer": by_customer,
        "time": seconds[order],
        "customer": customer[order],
        "terminal": terminal[order],
        "amount": amount[order],
        "fraud": np.zeros(len(order), dtype=np.int32),
        "scenario": np.zeros(len(order), dtype=np.int32),
    }


def _add_frauds(
    tx: dict[str, np.ndarray], settings: SimulationSettings, streams: dict[str, np.random.Generator]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the three fraud scenarios in place, in order; return who was compromised when."""
    day = tx["time"] // SECONDS_PER_DAY

    # (1) Large amounts.
    large = tx["amount"] > LARGE_AMOUNT_THRESHOLD
    tx["fraud"][large] = 1
    tx["scenario"][large] = SCENARIO_LARGE_AMOUNT

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
    on_compromised = compromised[tx["terminal"], day]
    tx["fraud"][on_compromised] = 1
    tx["scenario"][on_compromised] = SCENARIO_TERMINAL

    # (3) Compromised customers, day after day so that overlapping windows compound.
    rng = streams["customer_frauds"]
    per_day = customers_per_day
    by_customer = tx["by_customer"]  # per customer, days in order
    bounds = np.searchsorted(tx["customer"][by_customer], np.arange(settings.customers + 1))
    days_by_customer = day[by_customer]
    customers = np.empty((settings.days, per_day), dtype=np.int64)
    for d in range(settings.days):
        customers[d] = rng.choice(settings.customers, size=per_day, replace=False)
        rows = []
        for c in customers[d]:
            lo, hi = bounds[c], bounds[c + 1]
            first, last = np.searchsorted(
                days_by_customer[lo:hi], [d, d + CUSTOMER_COMPROMISE_DAYS]
            )
            rows.append(by_customer[lo + first : lo + last])
        window = np.concatenate(rows)
        frauds = rng.choice(window, size=len(window) // CUSTOMER_FRAUD_SHARE_DIVISOR, replace=False)
        tx["amount"][frauds] = np.round(tx["amount"][frauds] * CUSTOMER_FRAUD_AMOUNT_FACTOR, 2)
        tx["fraud"][frauds] = 1
        tx["scenario"][frauds] = SCENARIO_CUSTOMER

    return (
        _compromise_table(terminals, "terminal_id"),
        _compromise_table(customers, "customer_id"),
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
