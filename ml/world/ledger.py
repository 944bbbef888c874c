"""The simulated transactions, kept compact until someone asks for a table.

A world of 10x the default cards and terminals has 17.7M transactions: the simulator keeps per
transaction only its seconds since the start, customer, terminal (narrow integers), amount and
fraud scenario (int8), in the order they were drawn, with the permutation that puts them in
time order (``order``: time position -> row). What only frauds have (report times) or only a
few transactions (the genuine amount of those that scenario 3 multiplied) is kept for them only.
The landing writer takes one day at a time; :meth:`Ledger.frame` builds the full table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.world.handbook import SECONDS_PER_DAY

#: Rows handled at a time by the full-length passes.
ROW_BLOCK = 1 << 20


def time_order(seconds: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, day_bounds)``: the rows by time, ties in row order (a stable sort), and the time
    position where each of ``days`` days starts (``days + 1`` positions).

    Rows are bucketed by day, a block at a time, then each day is sorted: the permutation is the
    only full-length array made (int32 below 2**31 rows).
    """
    n = len(seconds)
    per_day = np.zeros(days, dtype=np.int64)
    for first in range(0, n, ROW_BLOCK):
        per_day += np.bincount(
            seconds[first : first + ROW_BLOCK] // SECONDS_PER_DAY, minlength=days
        )
    day_bounds = np.concatenate([[0], np.cumsum(per_day)])
    order = np.empty(n, dtype=np.int32 if n < 1 << 31 else np.int64)
    filled = day_bounds[:-1].copy()
    for first in range(0, n, ROW_BLOCK):
        day = seconds[first : first + ROW_BLOCK] // SECONDS_PER_DAY
        # a stable sort of 16-bit keys is a radix sort
        by_day = np.argsort(day.astype(np.uint16) if days <= 1 << 16 else day, kind="stable")
        count = np.bincount(day, minlength=days)
        rank = np.arange(len(day)) - (np.cumsum(count) - count)[day[by_day]]
        order[filled[day[by_day]] + rank] = first + by_day
        filled += count
    for lo, hi in zip(day_bounds[:-1], day_bounds[1:], strict=True):
        rows = order[lo:hi]
        order[lo:hi] = rows[np.argsort(seconds[rows], kind="stable")]
    return order, day_bounds


@dataclass(frozen=True)
class Ledger:
    """Transactions of a world. Row arrays (``seconds`` since ``start``, ``customer``,
    ``terminal``, ``amount``, ``scenario``: 0 genuine, else the fraud scenario) are in row order;
    time position p (= transaction_id) is row ``order[p]`` (row p when ``order`` is None)."""

    start: dt.date
    seconds: np.ndarray
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    scenario: np.ndarray
    order: np.ndarray | None
    day_bounds: np.ndarray  # time position where each day starts (days + 1)
    frauds: np.ndarray  # time positions of the frauds, ascending
    report_seconds: np.ndarray  # per fraud: seconds since start when it is reported
    genuine_rows: np.ndarray  # rows whose amount is not their genuine amount
    genuine_amounts: np.ndarray  # ... and their genuine amounts

    def __len__(self) -> int:
        return len(self.seconds)

    def rows(self, lo: int, hi: int) -> np.ndarray | slice:
        """Rows of time positions lo..hi-1."""
        return slice(lo, hi) if self.order is None else self.order[lo:hi]

    def fraud_rows(self, frauds: np.ndarray) -> np.ndarray:
        return frauds if self.order is None else self.order[frauds]

    def columns(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Time positions lo..hi-1 as the transactions table's core columns (int64 ids)."""
        rows = self.rows(lo, hi)
        return {
            "transaction_id": np.arange(lo, hi, dtype=np.int64),
            "tx_datetime": self.datetime(self.seconds[rows]),
            "customer_id": self.customer[rows].astype(np.int64),
            "terminal_id": self.terminal[rows].astype(np.int64),
            "tx_amount": self.amount[rows].astype(np.float64),
        }

    def reports(self) -> dict[str, np.ndarray]:
        """One entry per fraud, ordered by report time then transaction id: transaction_id,
        report_seconds, fraud_scenario (int32)."""
        by_time = np.lexsort((self.frauds, self.report_seconds))
        frauds = self.frauds[by_time]
        return {
            "transaction_id": frauds.astype(np.int64),
            "report_seconds": self.report_seconds[by_time],
            "fraud_scenario": self.scenario[self.fraud_rows(frauds)].astype(np.int32),
        }

    def fraud_reports(self) -> pd.DataFrame:
        """One row per fraud report (SimulatedWorld.fraud_reports)."""
        reports = self.reports()
        return pd.DataFrame(
            {
                "transaction_id": reports["transaction_id"],
                "reported_at": self.datetime(reports["report_seconds"]),
                "fraud_scenario": reports["fraud_scenario"],
            }
        )

    def frame(self) -> pd.DataFrame:
        """The full table (SimulatedWorld.transactions), one row per transaction by time."""
        rows = self.rows(0, len(self))
        seconds = self.seconds[rows].astype(np.int64)
        scenario = self.scenario[rows].astype(np.int32)
        genuine = self.amount.astype(np.float64)  # a copy
        genuine[self.genuine_rows] = self.genuine_amounts
        reported_at = np.full(len(seconds), np.datetime64("NaT"), dtype="datetime64[us]")
        reported_at[self.frauds] = self.datetime(self.report_seconds)
        columns = self.columns(0, len(self))
        return pd.DataFrame(
            {
                "transaction_id": columns["transaction_id"],
                "tx_datetime": columns["tx_datetime"],
                "tx_time_seconds": seconds,
                "tx_time_days": seconds // SECONDS_PER_DAY,
                "customer_id": columns["customer_id"],
                "terminal_id": columns["terminal_id"],
                "tx_amount": columns["tx_amount"],
                "tx_fraud": (scenario != 0).astype(np.int32),
                "tx_fraud_scenario": scenario,
                "reported_at": reported_at,
                "genuine_amount": genuine[rows],
            },
            copy=False,  # the arrays are ours: skip pandas' consolidating copy
        )

    def time_ordered(self) -> dict[str, np.ndarray]:
        """The transactions as full time-ordered arrays (the drift shifts' input): time,
        customer, terminal (int64), amount, fraud, scenario (int32) and genuine amount."""
        table = self.frame()
        names = {
            "time": "tx_time_seconds",
            "customer": "customer_id",
            "terminal": "terminal_id",
            "amount": "tx_amount",
            "fraud": "tx_fraud",
            "scenario": "tx_fraud_scenario",
            "genuine": "genuine_amount",
        }
        return {key: table[column].to_numpy() for key, column in names.items()}

    @classmethod
    def from_time_ordered(
        cls,
        start: dt.date,
        days: int,
        tx: dict[str, np.ndarray],
        genuine_amount: np.ndarray,
        delays: np.ndarray,
    ) -> Ledger:
        """A ledger of time-ordered arrays (the drift shifts' output), report delays for all."""
        scenario = tx["scenario"].astype(np.int8)
        frauds = np.flatnonzero(tx["fraud"] == 1)
        if not np.array_equal(frauds, np.flatnonzero(scenario)):
            raise ValueError("a transaction is fraud exactly when it has a fraud scenario")
        differs = np.flatnonzero(genuine_amount != tx["amount"])
        return cls(
            start=start,
            seconds=tx["time"],
            customer=tx["customer"],
            terminal=tx["terminal"],
            amount=tx["amount"],
            scenario=scenario,
            order=None,
            day_bounds=np.searchsorted(
                tx["time"] // SECONDS_PER_DAY, np.arange(days + 1), side="left"
            ),
            frauds=frauds,
            report_seconds=tx["time"][frauds].astype(np.int64) + delays[frauds],
            genuine_rows=differs,
            genuine_amounts=genuine_amount[differs],
        )

    def datetime(self, seconds: np.ndarray) -> np.ndarray:
        """Timestamps (datetime64[us]) of seconds since the start."""
        start = np.datetime64(self.start, "us")
        return start + seconds.astype(np.int64).astype("timedelta64[s]")
