"""The handbook's transaction draw (chapter 3), block of customers by block of customers.

The draws are the handbook's, in the handbook's order: one time of day per transaction of every
(customer, day) cell, then one amount each, the redraws of the amounts too small, then one
terminal pick each. A numpy ``Generator`` fills an array element by element, so drawing a
stream in consecutive blocks gives the same numbers as one call: only the arrays kept are
full-length, in the narrowest type their values fit (ids of 65,536 customers or terminals in 2
bytes, seconds of up to 68 years in 4), and each block's terminal adjacency is built when its
picks are drawn, then dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.world.handbook import MIN_AMOUNT, SECONDS_PER_DAY, TIME_OF_DAY_MEAN, TIME_OF_DAY_STD

#: Customers drawn at a time.
CUSTOMER_BLOCK = 2048

#: ``(first, last) -> (counts, neighbours)``: the terminal adjacency of customers first..last-1
#: (ml.world.neighbours).
TerminalsOf = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def id_type(n: int) -> type[np.integer]:
    """The narrowest integer type holding ids 0..n-1 (and -1)."""
    return np.uint16 if n <= 1 << 16 else np.int32 if n < 1 << 31 else np.int64


def seconds_type(days: int) -> type[np.integer]:
    """The narrowest integer type holding seconds since the start of ``days`` days."""
    return np.int32 if days * SECONDS_PER_DAY < 1 << 31 else np.int64


@dataclass(frozen=True)
class Drawn:
    """Kept transactions in generation order (customer, then day, then draw), and the customers'
    number of terminals (int64)."""

    seconds: np.ndarray  # since the start: column day x 86,400 + time of day
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    nb_terminals: np.ndarray


def daily_counts(mean_nb_tx_per_day: np.ndarray, days: int, rng: np.random.Generator) -> np.ndarray:
    """Transactions per customer and day, ``Poisson(mean_nb_tx_per_day)`` (customers x days)."""
    blocks = []
    for first in range(0, len(mean_nb_tx_per_day), CUSTOMER_BLOCK):
        lam = mean_nb_tx_per_day[first : first + CUSTOMER_BLOCK, None]
        counts = rng.poisson(lam, size=(len(lam), days))
        blocks.append(counts.astype(np.uint8) if counts.max(initial=0) < 256 else counts)
    return np.concatenate(blocks) if blocks else np.zeros((0, days), dtype=np.uint8)


def draw_transactions(
    mean_amount: np.ndarray,
    std_amount: np.ndarray,
    counts: np.ndarray,
    column_days: np.ndarray,
    terminals_of: TerminalsOf,
    n_terminals: int,
    rng: np.random.Generator,
) -> Drawn:
    """Time of day, amount and terminal of ``counts[customer, column]`` transactions each.

    Column j of ``counts`` is day ``column_days[j]``; terminal ids are below ``n_terminals``. Times outside the day and customers without
    terminals are dropped, as in the handbook; amounts below a cent are redrawn, as the landing
    contract requires tx_amount > 0.
    """
    cells = np.cumsum(counts.sum(axis=1, dtype=np.int64))
    draws = int(cells[-1]) if len(cells) else 0
    bounds = [
        (first, min(first + CUSTOMER_BLOCK, len(counts)))
        for first in range(0, len(counts), CUSTOMER_BLOCK)
    ]
    n_days = int(column_days.max(initial=0)) + 1
    seconds = np.empty(draws, dtype=seconds_type(n_days))
    customer = np.empty(draws, dtype=id_type(len(counts)))
    in_day = []  # per block, which draws fall inside their day (packed bits)
    kept = 0
    for first, last in bounds:  # times of day
        owner, column = _cells(counts, first, last)
        time_of_day = np.floor(rng.normal(TIME_OF_DAY_MEAN, TIME_OF_DAY_STD, size=len(owner)))
        inside = (time_of_day >= 0) & (time_of_day < SECONDS_PER_DAY)
        k = int(inside.sum())
        seconds[kept : kept + k] = column_days[column[inside]] * SECONDS_PER_DAY + time_of_day[
            inside
        ].astype(np.int64)
        customer[kept : kept + k] = owner[inside]
        in_day.append(np.packbits(inside))
        kept += k

    amount = np.empty(kept, dtype=np.float64)
    low_rows, low_means = [], []  # draws below a cent: kept row (-1: dropped) and mean amount
    kept = 0
    for (first, last), packed in zip(bounds, in_day, strict=True):  # amounts
        owner, _ = _cells(counts, first, last)
        inside = np.unpackbits(packed, count=len(owner)).view(bool)
        drawn = rng.normal(mean_amount[owner], std_amount[owner])
        low = np.flatnonzero(drawn < MIN_AMOUNT)
        row = kept + np.cumsum(inside) - 1
        low_rows.append(np.where(inside[low], row[low], -1))
        low_means.append(mean_amount[owner[low]])
        k = int(inside.sum())
        amount[kept : kept + k] = drawn[inside]
        kept += k
    _redraw(amount, np.concatenate(low_rows), np.concatenate(low_means), rng)
    np.round(amount, 2, out=amount)

    terminal = np.empty(kept, dtype=id_type(n_terminals))
    nb_terminals = []
    read = write = 0
    for (first, last), packed in zip(bounds, in_day, strict=True):  # terminals
        owner, _ = _cells(counts, first, last)
        inside = np.unpackbits(packed, count=len(owner)).view(bool)
        nb, neighbours = terminals_of(first, last)
        nb_terminals.append(nb)
        local = owner - first
        pick = rng.integers(0, np.maximum(nb[local], 1))
        offsets = np.concatenate([[0], np.cumsum(nb)])
        keep = inside & (nb[local] > 0)
        k, m = int(keep.sum()), int(inside.sum())
        terminal[write : write + k] = neighbours[offsets[local[keep]] + pick[keep]]
        if k < m:  # customers without terminals: move the kept rows up, in order
            stays = (nb[local] > 0)[inside]
            for values in (seconds, customer, amount):
                values[write : write + k] = values[read : read + m][stays]
        read, write = read + m, write + k
    return Drawn(
        seconds=seconds[:write],
        customer=customer[:write],
        terminal=terminal[:write],
        amount=amount[:write],
        nb_terminals=np.concatenate(nb_terminals or [np.empty(0, np.int64)]),
    )


def _cells(counts: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Customer and column of each draw of customers first..last-1, in generation order."""
    block = counts[first:last]
    cell = np.repeat(np.arange(block.size, dtype=np.int64), block.ravel())
    owner, column = np.divmod(cell, block.shape[1])
    return owner + first, column


def _redraw(
    amount: np.ndarray, rows: np.ndarray, means: np.ndarray, rng: np.random.Generator
) -> None:
    """Redraw the amounts below a cent from U(0, 2 x mean) until none is (dropped rows too: they
    take their draws)."""
    values = np.empty(len(rows))
    redraw = np.arange(len(rows))
    while len(redraw):
        values[redraw] = rng.uniform(0, 2 * means[redraw])
        redraw = redraw[values[redraw] < MIN_AMOUNT]
    stored = rows >= 0
    amount[rows[stored]] = values[stored]
