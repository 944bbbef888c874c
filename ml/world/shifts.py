"""Drift injection: the simulated world changes from a given day (``simulation.drift``).

Production data does not stay like the training data. ``ml simulate`` can change its world from a
day on, so that monitoring (feature drift, matured performance) and retraining have something to
detect. Each :class:`ml.platform.settings.DriftEvent` has a ``kind``, a ``start`` day, an optional ``end``
day (inclusive; default: the end of the horizon) and a ``strength``:

``card_testing`` (strength: cards tested per day, default 5)
    A new fraud pattern, scenario code 4. Each day ``strength`` random cards (customers) are
    compromised and tested: a burst of 3-8 small transactions (0.50-4.99) a few minutes apart
    (10-180 s), then 1-30 minutes later one large transaction (100-1000) that cashes out. Every
    transaction of the burst is made at a terminal the customer never uses (outside their radius)
    and is fraud.
``terminal_compromise_rate`` (strength: terminals compromised per day, default 6)
    Scenario 2 compromises ``strength`` terminals a day instead of 2 (0 stops it). Extra terminals
    are drawn among the others of the day; every transaction on a compromised terminal during its
    28 days becomes fraud (scenario 2), as in the handbook.
``genuine_amount_shift`` (strength: factor, default 1.5)
    The amounts of genuine transactions (``tx_fraud = 0`` once every fraud rule has run) are
    multiplied by the factor (rounded to cents, at least 0.01). They stay genuine even above 220:
    the handbook's "large amount = fraud" rule no longer separates the classes, which is the point.
``genuine_activity_shift`` (strength: factor, default 1.5)
    Customers make ``factor`` times as many transactions a day. Above 1, extra transactions are
    drawn like the handbook's (Poisson(mean_nb_tx_per_day * (factor - 1)) a day, same times,
    amounts and terminals) and the fraud rules apply to them: amount > 220 (scenario 1), a
    compromised terminal (2), a compromised customer's window (3: each window that covers the
    transaction takes it with probability 1/3, amount x 5). Below 1, each transaction of the day is
    kept with probability ``factor`` (frauds included).

Several events may be listed: factors of events that cover the same day multiply, card-testing
counts add up, and for the terminal rate the last listed event that covers a day wins. The kinds
are applied in the order above's reverse dependency: terminal rate, activity, amount, card testing.

Guarantees (tested in tests/test_drift.py):

* no drift configured: :func:`ml.world.simulator.simulate` does not call this module (same world as ever);
* nothing before the first drift day changes: transactions, labels, report times and ids;
* deterministic for a seed: each kind draws from its own child of ``SeedSequence(seed)``, after
  the simulator's own children, so adding an event of one kind does not change another kind's
  draws;
* every fraud gets a report ``U{0 .. label_delay_days * 86400}`` seconds after the transaction and
  the transactions stay sorted by time (transaction ids are assigned after the merge).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.platform.settings import SimulationSettings
from ml.world import handbook
from ml.world.card_testing import card_testing
from ml.world.draws import draw_transactions
from ml.world.shift_rows import (
    ACTIVITY,
    BASE,
    SMALLEST_AMOUNT,
    day_of,
    day_table,
    merge,
    report_delays,
)

# Random streams of the drift kinds: SeedSequence children len(handbook.STREAMS), len(handbook.STREAMS) + 1, ...
DRIFT_STREAMS = ("terminal_compromise_rate", "genuine_activity_shift", "card_testing")


@dataclass(frozen=True)
class DriftSchedule:
    """Per simulated day (index 0 = ``settings.start``), the state of the world."""

    terminals_per_day: np.ndarray  # int: terminals compromised that day (base: 2)
    activity_factor: np.ndarray  # float: factor on the transactions per day
    amount_factor: np.ndarray  # float: factor on genuine amounts
    cards_tested_per_day: np.ndarray  # int: card-testing bursts that day
    # terminals compromised a day without drift (ml.simulate.compromised_per_day)
    base_terminals_per_day: int = handbook.COMPROMISED_TERMINALS_PER_DAY

    @property
    def first_day(self) -> int | None:
        """First day that differs from the stationary world (None if none does)."""
        changed = (
            (self.terminals_per_day != self.base_terminals_per_day)
            | (self.activity_factor != 1)
            | (self.amount_factor != 1)
            | (self.cards_tested_per_day > 0)
        )
        days = np.flatnonzero(changed)
        return int(days[0]) if len(days) else None


@dataclass(frozen=True)
class DriftedTransactions:
    """The simulator's transaction arrays after drift (same keys and dtypes as before)."""

    tx: dict[str, np.ndarray]
    genuine_amount: np.ndarray
    delays: np.ndarray
    compromised_terminals: pd.DataFrame
    card_tested_customers: pd.DataFrame


def drift_schedule(settings: SimulationSettings) -> DriftSchedule:
    """The per-day state that the settings' drift events describe."""
    days = settings.days
    base_terminals = handbook.compromised_per_day(settings)[0]
    schedule = DriftSchedule(
        terminals_per_day=np.full(days, base_terminals, dtype=np.int64),
        activity_factor=np.ones(days),
        amount_factor=np.ones(days),
        cards_tested_per_day=np.zeros(days, dtype=np.int64),
        base_terminals_per_day=base_terminals,
    )
    for event in settings.drift:
        first = (event.start - settings.start).days
        last = days - 1 if event.end is None else min(days - 1, (event.end - settings.start).days)
        covered = slice(first, last + 1)
        strength = float(event.strength)
        if event.kind == "card_testing":
            schedule.cards_tested_per_day[covered] += int(strength)
        elif event.kind == "terminal_compromise_rate":
            schedule.terminals_per_day[covered] = int(strength)
        elif event.kind == "genuine_amount_shift":
            schedule.amount_factor[covered] *= strength
        else:  # genuine_activity_shift
            schedule.activity_factor[covered] *= strength
    return schedule


def drift_start(settings: SimulationSettings) -> dt.date | None:
    """The first day whose world differs from the stationary one (None without drift)."""
    first = drift_schedule(settings).first_day
    return None if first is None else settings.start + dt.timedelta(days=first)


def apply_drift(
    tx: dict[str, np.ndarray],
    *,
    genuine_amount: np.ndarray,
    delays: np.ndarray,
    compromised_terminals: pd.DataFrame,
    compromised_customers: pd.DataFrame,
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    settings: SimulationSettings,
) -> DriftedTransactions:
    """Change the simulated transactions (time-ordered arrays of ml.world.simulator) from the drift days on.

    ``tx`` has the simulator's keys (time, customer, terminal, amount, fraud, scenario), after the
    three handbook scenarios; ``delays`` are the report delays drawn for them. Rows of days before
    the first drift day come out unchanged and first.
    """
    schedule = drift_schedule(settings)
    rows = {
        "time": tx["time"],
        "customer": tx["customer"],
        "terminal": tx["terminal"],
        "amount": tx["amount"].copy(),
        "fraud": tx["fraud"].copy(),
        "scenario": tx["scenario"].copy(),
        "genuine": genuine_amount.copy(),
        "delay": delays,
        "origin": np.full(len(tx["time"]), BASE, dtype=np.int8),
    }
    if schedule.first_day is None:
        empty = day_table(np.empty(0, np.int64), np.empty(0, np.int64), "customer_id")
        return _result(rows, compromised_terminals, empty)

    streams = _drift_streams(settings.seed)
    compromised_terminals = _shift_terminal_rate(
        rows, compromised_terminals, schedule, settings, streams["terminal_compromise_rate"]
    )
    terminal_windows = _windows(
        compromised_terminals,
        "terminal_id",
        settings.terminals,
        settings.days,
        handbook.TERMINAL_COMPROMISE_DAYS,
    )
    customer_windows = _windows(
        compromised_customers,
        "customer_id",
        settings.customers,
        settings.days,
        handbook.CUSTOMER_COMPROMISE_DAYS,
    )
    rows = _shift_activity(
        rows,
        schedule,
        customers,
        offsets,
        neighbours,
        terminal_windows > 0,
        customer_windows,
        settings,
        streams["genuine_activity_shift"],
    )
    _shift_genuine_amounts(rows, schedule)
    rows, card_tested = card_testing(
        rows, schedule.cards_tested_per_day, offsets, neighbours, settings, streams["card_testing"]
    )
    return _result(rows, compromised_terminals, card_tested)


def _drift_streams(seed: int) -> dict[str, np.random.Generator]:
    """One generator per drift kind: SeedSequence(seed)'s children after the simulator's own."""
    return {
        kind: np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(len(handbook.STREAMS) + i,))
        )
        for i, kind in enumerate(DRIFT_STREAMS)
    }


def _windows(
    compromised: pd.DataFrame, column: str, n_keys: int, days: int, length: int
) -> np.ndarray:
    """keys x days: how many compromise windows [day, day + length) cover each (key, day)."""
    starts = np.zeros((n_keys, days + length), dtype=np.int32)
    np.add.at(starts, (compromised[column].to_numpy(), compromised["day"].to_numpy()), 1)
    cumulative = np.cumsum(starts, axis=1)
    shifted = np.zeros_like(cumulative)
    shifted[:, length:] = cumulative[:, :-length]
    return (cumulative - shifted)[:, :days]


def _shift_terminal_rate(
    rows: dict[str, np.ndarray],
    compromised_terminals: pd.DataFrame,
    schedule: DriftSchedule,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Compromise ``terminals_per_day`` terminals a day and relabel scenario 2 to match."""
    base_per_day = handbook.compromised_per_day(settings)[0]
    base = compromised_terminals["terminal_id"].to_numpy().reshape(settings.days, base_per_day)
    wanted = np.minimum(schedule.terminals_per_day, settings.terminals)
    if (wanted == base_per_day).all():
        return compromised_terminals
    all_terminals = np.arange(settings.terminals)
    days, chosen = [], []
    for day in range(settings.days):
        today = base[day, : min(wanted[day], base_per_day)]
        extra = int(wanted[day]) - len(today)
        if extra > 0:
            others = np.setdiff1d(all_terminals, base[day], assume_unique=True)
            today = np.concatenate([today, rng.choice(others, size=extra, replace=False)])
        days.append(np.full(len(today), day))
        chosen.append(today)
    table = day_table(np.concatenate(days), np.concatenate(chosen), "terminal_id")

    covered = _windows(
        table, "terminal_id", settings.terminals, settings.days, handbook.TERMINAL_COMPROMISE_DAYS
    )
    on = covered[rows["terminal"], day_of(rows["time"])] > 0
    scenario = rows["scenario"]
    newly = on & (
        (scenario == handbook.SCENARIO_GENUINE) | (scenario == handbook.SCENARIO_LARGE_AMOUNT)
    )
    scenario[newly] = handbook.SCENARIO_TERMINAL
    lost = ~on & (scenario == handbook.SCENARIO_TERMINAL)
    scenario[lost] = np.where(
        rows["amount"][lost] > handbook.LARGE_AMOUNT_THRESHOLD,
        handbook.SCENARIO_LARGE_AMOUNT,
        handbook.SCENARIO_GENUINE,
    )
    rows["fraud"][:] = (scenario != handbook.SCENARIO_GENUINE).astype(rows["fraud"].dtype)
    return table


def _shift_activity(
    rows: dict[str, np.ndarray],
    schedule: DriftSchedule,
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    on_compromised_terminal: np.ndarray,
    customer_windows: np.ndarray,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Thin the days with a factor below 1, add transactions to the days with a factor above 1."""
    factor = schedule.activity_factor
    if (factor == 1).all():
        return rows
    day = day_of(rows["time"])
    thinned = factor[day] < 1
    keep = np.ones(len(day), dtype=bool)
    keep[thinned] = rng.random(int(thinned.sum())) < factor[day[thinned]]
    rows = {name: values[keep] for name, values in rows.items()}

    add_days = np.flatnonzero(factor > 1)
    if not len(add_days):
        return rows
    added = _extra_transactions(
        customers, offsets, neighbours, settings.terminals, add_days, factor[add_days] - 1, rng
    )
    n = len(added["time"])
    added_day = day_of(added["time"])
    scenario = np.zeros(n, dtype=rows["scenario"].dtype)
    scenario[added["amount"] > handbook.LARGE_AMOUNT_THRESHOLD] = handbook.SCENARIO_LARGE_AMOUNT
    scenario[on_compromised_terminal[added["terminal"], added_day]] = handbook.SCENARIO_TERMINAL
    genuine = added["amount"]
    picked = rng.binomial(
        customer_windows[added["customer"], added_day], 1 / handbook.CUSTOMER_FRAUD_SHARE_DIVISOR
    )
    amount = np.where(
        picked > 0, np.round(genuine * handbook.CUSTOMER_FRAUD_AMOUNT_FACTOR**picked, 2), genuine
    )
    scenario[picked > 0] = handbook.SCENARIO_CUSTOMER
    extra = {
        "time": added["time"],
        "customer": added["customer"],
        "terminal": added["terminal"],
        "amount": amount,
        "fraud": (scenario != handbook.SCENARIO_GENUINE).astype(rows["fraud"].dtype),
        "scenario": scenario,
        "genuine": genuine,
        "delay": report_delays(rng, n, settings),
        "origin": np.full(n, ACTIVITY, dtype=np.int8),
    }
    return merge(rows, extra)


def _extra_transactions(
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    n_terminals: int,
    days: np.ndarray,
    rate_factor: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Genuine transactions drawn as the handbook's, Poisson(mean_nb_tx_per_day * rate_factor)
    per customer and listed day (same time-of-day, amount and terminal distributions)."""
    rate = customers["mean_nb_tx_per_day"].to_numpy()[:, None] * rate_factor[None, :]
    counts = rng.poisson(rate)
    drawn = draw_transactions(
        customers["mean_amount"].to_numpy(),
        customers["std_amount"].to_numpy(),
        counts,
        days,
        lambda first, last: (
            np.diff(offsets[first : last + 1]),
            neighbours[offsets[first] : offsets[last]],
        ),
        n_terminals,
        rng,
    )
    return {
        "time": drawn.seconds,
        "customer": drawn.customer,
        "terminal": drawn.terminal,
        "amount": drawn.amount,
    }


def _shift_genuine_amounts(rows: dict[str, np.ndarray], schedule: DriftSchedule) -> None:
    """Multiply the amounts of genuine transactions on shifted days (in place)."""
    factor = schedule.amount_factor[day_of(rows["time"])]
    shifted = (factor != 1) & (rows["fraud"] == 0)
    amount = np.maximum(np.round(rows["amount"][shifted] * factor[shifted], 2), SMALLEST_AMOUNT)
    rows["amount"][shifted] = amount
    rows["genuine"][shifted] = amount


def _result(
    rows: dict[str, np.ndarray], compromised_terminals: pd.DataFrame, card_tested: pd.DataFrame
) -> DriftedTransactions:
    return DriftedTransactions(
        tx={
            name: rows[name]
            for name in ("time", "customer", "terminal", "amount", "fraud", "scenario")
        },
        genuine_amount=rows["genuine"],
        delays=rows["delay"],
        compromised_terminals=compromised_terminals,
        card_tested_customers=card_tested,
    )
