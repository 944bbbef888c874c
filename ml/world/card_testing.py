"""Card testing (fraud scenario 4, a shift of the world): a compromised card is probed with a
burst of small amounts at unusual terminals, then cashed out with a large one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.platform.settings import SimulationSettings
from ml.world.handbook import SECONDS_PER_DAY
from ml.world.shift_rows import CARD_TEST, day_table, merge, report_delays

SCENARIO_CARD_TESTING = 4
# Card testing: small transactions per burst (inclusive range), their amounts, the seconds between
# two of them, the seconds from the last one to the large one, and the large amount.
CARD_TEST_BURST = (3, 8)
CARD_TEST_SMALL_AMOUNT = (0.50, 4.99)
CARD_TEST_GAP_SECONDS = (10, 180)
CARD_TEST_CASH_OUT_SECONDS = (60, 1800)
CARD_TEST_LARGE_AMOUNT = (100.0, 1000.0)


def card_testing(
    rows: dict[str, np.ndarray],
    cards_tested_per_day: np.ndarray,
    offsets: np.ndarray,
    neighbours: np.ndarray,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Add the card-testing bursts (scenario 4) of each day; return who was tested when."""
    per_day = np.minimum(cards_tested_per_day, settings.customers)
    burst_day = np.repeat(np.arange(settings.days, dtype=np.int64), per_day)
    burst_customer = np.concatenate(
        [rng.choice(settings.customers, size=int(k), replace=False) for k in per_day if k > 0]
        or [np.empty(0, np.int64)]
    ).astype(np.int64)
    tested = day_table(burst_day, burst_customer, "customer_id")
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
    time = (
        burst_day[burst] * SECONDS_PER_DAY
        + burst_start[burst]
        + np.concatenate([small_offset, large_offset])
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
        "delay": report_delays(rng, n, settings),
        "origin": np.full(n, CARD_TEST, dtype=np.int8),
    }
    return merge(rows, extra), tested


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
