"""Drift injection: the simulated world changes from a given day (``simulation.drift``).

Production data does not stay like the training data. ``ml simulate`` can change its world from a
day on, so that monitoring (feature drift, matured performance) and retraining have something to
detect. Each :class:`ml.settings.DriftEvent` has a ``kind``, a ``start`` day, an optional ``end``
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

* no drift configured: :func:`ml.simulate.simulate` does not call this module (same world as ever);
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

from ml.settings import SimulationSettings
from ml.simulate import (
    _STREAMS,
    COMPROMISED_TERMINALS_PER_DAY,
    CUSTOMER_COMPROMISE_DAYS,
    CUSTOMER_FRAUD_AMOUNT_FACTOR,
    CUSTOMER_FRAUD_SHARE_DIVISOR,
    LARGE_AMOUNT_THRESHOLD,
    SCENARIO_CUSTOMER,
    SCENARIO_GENUINE,
    SCENARIO_LARGE_AMOUNT,
    SCENARIO_TERMINAL,
    SECONDS_PER_DAY,
    TERMINAL_COMPROMISE_DAYS,
    compromised_per_day,
    draw_transactions,
)

SCENARIO_CARD_TESTING = 4
# Card testing: small transactions per burst (inclusive range), their amounts, the seconds between
# two of them, the seconds from the last one to the large one, and the large amount.
CARD_TEST_BURST = (3, 8)
CARD_TEST_SMALL_AMOUNT = (0.50, 4.99)
CARD_TEST_GAP_SECONDS = (10, 180)
CARD_TEST_CASH_OUT_SECONDS = (60, 1800)
CARD_TEST_LARGE_AMOUNT = (100.0, 1000.0)
SMALLEST_AMOUNT = 0.01
# Random streams of the drift kinds: SeedSequence children len(_STREAMS), len(_STREAMS) + 1, ...
DRIFT_STREAMS = ("terminal_compromise_rate", "genuine_activity_shift", "card_testing")
# Where a row comes from, to merge without reordering the base transactions.
_BASE, _ACTIVITY, _CARD_TEST = 0, 1, 2


@dataclass(frozen=True)
class DriftSchedule:
    """Per simulated day (index 0 = ``settings.start``), the state of the world."""

    terminals_per_day: np.ndarray  # int: terminals compromised that day (base: 2)
    activity_factor: np.ndarray  # float: factor on the transactions per day
    amount_factor: np.ndarray  # float: factor on genuine amounts
    cards_tested_per_day: np.ndarray  # int: card-testing bursts that day
    # terminals compromised a day without drift (ml.simulate.compromised_per_day)
    base_terminals_per_day: int = COMPROMISED_TERMINALS_PER_DAY

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
    base_terminals = compromised_per_day(settings)[0]
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
    genuine_amount: np.ndarray,
    delays: np.ndarray,
    compromised_terminals: pd.DataFrame,
    compromised_customers: pd.DataFrame,
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    settings: SimulationSettings,
) -> DriftedTransactions:
    """Change the simulated transactions (time-ordered arrays of ml.simulate) from the drift days on.

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
        "origin": np.full(len(tx["time"]), _BASE, dtype=np.int8),
    }
    if schedule.first_day is None:
        empty = _day_table(np.empty(0, np.int64), np.empty(0, np.int64), "customer_id")
        return _result(rows, compromised_terminals, empty)

    streams = _drift_streams(settings.seed)
    compromised_terminals = _shift_terminal_rate(
        rows, compromised_terminals, schedule, settings, streams["terminal_compromise_rate"]
    )
    terminal_windows = _windows(
        compromised_terminals, "terminal_id", settings.terminals, settings.days, TERMINAL_COMPROMISE_DAYS
    )
    customer_windows = _windows(
        compromised_customers, "customer_id", settings.customers, settings.days, CUSTOMER_COMPROMISE_DAYS
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
    rows, card_tested = _card_testing(
        rows, schedule, offsets, neighbours, settings, streams["card_testing"]
    )
    return _result(rows, compromised_terminals, card_tested)


def _drift_streams(seed: int) -> dict[str, np.random.Generator]:
    """One generator per drift kind: SeedSequence(seed)'s children after the simulator's own."""
    return {
        kind: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(_STREAMS) + i,)))
        for i, kind in enumerate(DRIFT_STREAMS)
    }


def _day_of(time: np.ndarray) -> np.ndarray:
    return time // SECONDS_PER_DAY


def _day_table(days: np.ndarray, ids: np.ndarray, column: str) -> pd.DataFrame:
    return pd.DataFrame({"day": days.astype(np.int64), column: ids.astype(np.int64)})


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
    base_per_day = compromised_per_day(settings)[0]
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
    table = _day_table(np.concatenate(days), np.concatenate(chosen), "terminal_id")

    covered = _windows(
        table, "terminal_id", settings.terminals, settings.days, TERMINAL_COMPROMISE_DAYS
    )
    on = covered[rows["terminal"], _day_of(rows["time"])] > 0
    scenario = rows["scenario"]
    newly = on & ((scenario == SCENARIO_GENUINE) | (scenario == SCENARIO_LARGE_AMOUNT))
    scenario[newly] = SCENARIO_TERMINAL
    lost = ~on & (scenario == SCENARIO_TERMINAL)
    scenario[lost] = np.where(
        rows["amount"][lost] > LARGE_AMOUNT_THRESHOLD, SCENARIO_LARGE_AMOUNT, SCENARIO_GENUINE
    )
    rows["fraud"][:] = (scenario != SCENARIO_GENUINE).astype(rows["fraud"].dtype)
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
    day = _day_of(rows["time"])
    thinned = factor[day] < 1
    keep = np.ones(len(day), dtype=bool)
    keep[thinned] = rng.random(int(thinned.sum())) < factor[day[thinned]]
    rows = {name: values[keep] for name, values in rows.items()}

    add_days = np.flatnonzero(factor > 1)
    if not len(add_days):
        return rows
    added = _extra_transactions(customers, offsets, neighbours, add_days, factor[add_days] - 1, rng)
    n = len(added["time"])
    added_day = _day_of(added["time"])
    scenario = np.zeros(n, dtype=rows["scenario"].dtype)
    scenario[added["amount"] > LARGE_AMOUNT_THRESHOLD] = SCENARIO_LARGE_AMOUNT
    scenario[on_compromised_terminal[added["terminal"], added_day]] = SCENARIO_TERMINAL
    genuine = added["amount"]
    picked = rng.binomial(customer_windows[added["customer"], added_day], 1 / CUSTOMER_FRAUD_SHARE_DIVISOR)
    amount = np.where(
        picked > 0, np.round(genuine * CUSTOMER_FRAUD_AMOUNT_FACTOR**picked, 2), genuine
    )
    scenario[picked > 0] = SCENARIO_CUSTOMER
    extra = {
        "time": added["time"],
        "customer": added["customer"],
        "terminal": added["terminal"],
        "amount": amount,
        "fraud": (scenario != SCENARIO_GENUINE).astype(rows["fraud"].dtype),
        "scenario": scenario,
        "genuine": genuine,
        "delay": _report_delays(rng, n, settings),
        "origin": np.full(n, _ACTIVITY, dtype=np.int8),
    }
    return _merge(rows, extra)


def _extra_transactions(
    customers: pd.DataFrame,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    days: np.ndarray,
    rate_factor: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Genuine transactions drawn as the handbook's, Poisson(mean_nb_tx_per_day * rate_factor)
    per customer and listed day (same time-of-day, amount and terminal distributions)."""
    rate = customers["mean_nb_tx_per_day"].to_numpy()[:, None] * rate_factor[None, :]
    counts = rng.poisson(rate)
    customer, day_index, time_of_day, amount, pick = draw_transactions(customers, offsets, counts, rng)
    return {
        "time": days[day_index] * SECONDS_PER_DAY + time_of_day,
        "customer": customer,
        "terminal": neighbours[offsets[customer] + pick],
        "amount": amount,
    }


def _shift_genuine_amounts(rows: dict[str, np.ndarray], schedule: DriftSchedule) -> None:
    """Multiply the amounts of genuine transactions on shifted days (in place)."""
    factor = schedule.amount_factor[_day_of(rows["time"])]
    shifted = (factor != 1) & (rows["fraud"] == 0)
    amount = np.maximum(np.round(rows["amount"][shifted] * factor[shifted], 2), SMALLEST_AMOUNT)
    rows["amount"][shifted] = amount
    rows["genuine"][shifted] = amount


def _card_testing(
    rows: dict[str, np.ndarray],
    schedule: DriftSchedule,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Add the card-testing bursts (scenario 4) of each day; return who was tested when."""
    per_day = np.minimum(schedule.cards_tested_per_day, settings.customers)
    burst_day = np.repeat(np.arange(settings.days, dtype=np.int64), per_day)
    burst_customer = np.concatenate(
        [rng.choice(settings.customers, size=int(k), replace=False) for k in per_day if k > 0]
        or [np.empty(0, np.int64)]
    ).astype(np.int64)
    tested = _day_table(burst_day, burst_customer, "customer_id")
    bursts = len(burst_day)
    if not bursts:
        return rows, tested

    # small transactions: seconds after the burst's first one
    n_small = rng.integers(CARD_TEST_BURST[0], CARD_TEST_BURST[1], size=bursts, endpoint=True)
    burst_of_small = np.repeat(np.arange(bursts), n_small)
    first_small = np.concatenate([[0], np.cumsum(n_small)[:-1]])
    gaps = rng.integers(*CARD_TEST_GAP_SECONDS, size=len(burst_of_small), endpoint=True)
    gaps[first_small] = 0
    elapsed = np.cumsum(gaps)
    small_offset = elapsed - elapsed[first_small][burst_of_small]
    last_small = first_small + n_small - 1
    large_offset = small_offset[last_small] + rng.integers(
        *CARD_TEST_CASH_OUT_SECONDS, size=bursts, endpoint=True
    )
    # the whole burst happens inside its day
    burst_start = rng.integers(0, SECONDS_PER_DAY - large_offset)

    small_amount = np.round(rng.uniform(*CARD_TEST_SMALL_AMOUNT, size=len(burst_of_small)), 2)
    large_amount = np.round(rng.uniform(*CARD_TEST_LARGE_AMOUNT, size=bursts), 2)
    burst = np.concatenate([burst_of_small, np.arange(bursts)])
    customer = burst_customer[burst]
    time = burst_day[burst] * SECONDS_PER_DAY + burst_start[burst] + np.concatenate(
        [small_offset, large_offset]
    )
    amount = np.concatenate([small_amount, large_amount])
    n = len(time)
    extra = {
        "time": time,
        "customer": customer,
        "terminal": _unusual_terminals(customer, offsets, neighbours, settings.terminals, rng),
        "amount": amount,
        "fraud": np.ones(n, dtype=rows["fraud"].dtype),
        "scenario": np.full(n, SCENARIO_CARD_TESTING, dtype=rows["scenario"].dtype),
        "genuine": amount,
        "delay": _report_delays(rng, n, settings),
        "origin": np.full(n, _CARD_TEST, dtype=np.int8),
    }
    return _merge(rows, extra), tested


def _unusual_terminals(
    customer: np.ndarray,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    n_terminals: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A random terminal per row outside its customer's radius (any terminal if all are inside)."""
    owner = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    usual = owner * n_terminals + neighbours  # sorted: by customer, then terminal
    terminal = rng.integers(0, n_terminals, size=len(customer))
    for _ in range(100):
        code = customer * n_terminals + terminal
        position = np.minimum(np.searchsorted(usual, code), max(len(usual) - 1, 0))
        used = (usual[position] == code) if len(usual) else np.zeros(len(code), dtype=bool)
        if not used.any():
            break
        terminal[used] = rng.integers(0, n_terminals, size=int(used.sum()))
    return terminal


def _report_delays(rng: np.random.Generator, n: int, settings: SimulationSettings) -> np.ndarray:
    """Report delays in seconds, drawn as the simulator's (U{0 .. label_delay_days days})."""
    return rng.integers(0, settings.label_delay_days * SECONDS_PER_DAY, size=n, endpoint=True)


def _merge(rows: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Both sets of rows in time order; on equal times the existing rows first, in their order."""
    merged = {
        name: np.concatenate([values, extra[name].astype(values.dtype)])
        for name, values in rows.items()
    }
    position = np.arange(len(merged["time"]))
    order = np.lexsort((position, merged["origin"], merged["time"]))
    return {name: values[order] for name, values in merged.items()}


def _result(
    rows: dict[str, np.ndarray], compromised_terminals: pd.DataFrame, card_tested: pd.DataFrame
) -> DriftedTransactions:
    return DriftedTransactions(
        tx={name: rows[name] for name in ("time", "customer", "terminal", "amount", "fraud", "scenario")},
        genuine_amount=rows["genuine"],
        delays=rows["delay"],
        compromised_terminals=compromised_terminals,
        card_tested_customers=card_tested,
    )
