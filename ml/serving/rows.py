"""Columnar inputs and outputs of an online feature state.

Transactions come in the landing contract's columns (docs/data-contract.md: transaction_id,
tx_datetime, customer_id, terminal_id, tx_amount), fraud reports with transaction_id and
reported_at. Timestamps are held as integer microseconds since 1970-01-01 of the wall clock
(timestamps without time zone, read as UTC, like the warehouse's): whole seconds (floored) for
the windows, as tx_epoch_s in silver, and full microseconds where the SQL compares timestamps
(a report counts at a transaction when reported_at <= tx_datetime).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

TRANSACTION_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
REPORT_COLUMNS = ("transaction_id", "reported_at")
_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def to_microseconds(values: Any) -> np.ndarray:
    """Timestamps without time zone (datetime64, pandas, datetime or ISO strings) as int64 µs."""
    if isinstance(values, pd.Series | pd.Index) and getattr(values.dtype, "tz", None) is not None:
        raise ValueError("timestamps must be without time zone (the landing contract's wall clock)")
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[us]").astype(np.int64)
    if isinstance(values, pd.Series | pd.Index):
        return pd.to_datetime(values).to_numpy().astype("datetime64[us]").astype(np.int64)
    return np.array([_one_microseconds(value) for value in values], dtype=np.int64)


def _one_microseconds(value: Any) -> int:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError(
                "timestamps must be without time zone (the landing contract's wall clock)"
            )
        return (value - _EPOCH) // _MICROSECOND
    raise TypeError(f"not a timestamp: {value!r}")


class _Rows:
    """What transactions and reports share: one array per field, each read from a contract
    column. ``COLUMNS``: field -> (contract column, dtype; ``None`` for a timestamp, held in µs)."""

    COLUMNS: ClassVar[dict[str, tuple[str, Any]]]
    transaction_id: np.ndarray

    def __len__(self) -> int:
        return len(self.transaction_id)

    @classmethod
    def _read(cls, values: Callable[[str], Any]) -> Self:
        """The rows whose contract column ``c`` holds ``values(c)``."""
        return cls(
            **{
                field: to_microseconds(values(column))
                if dtype is None
                else np.asarray(values(column), dtype=dtype)
                for field, (column, dtype) in cls.COLUMNS.items()
            }
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Self:
        """From a frame with the contract's columns (silver's work as well)."""
        return cls._read(lambda column: frame[column])

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Self:
        """From mappings with the contract's keys (a request body, a log line)."""
        records = list(records)
        return cls._read(lambda column: [r[column] for r in records])

    def take(self, index: np.ndarray | slice) -> Self:
        return type(self)(**{field: getattr(self, field)[index] for field in self.COLUMNS})

    def tuples(self) -> Iterator[tuple[Any, ...]]:
        """Each row's values in field order, as Python numbers (no numpy scalar per value)."""
        return zip(*(getattr(self, field).tolist() for field in self.COLUMNS), strict=True)


@dataclass(frozen=True)
class TransactionRows(_Rows):
    """Transactions, one array per column (tx_us: tx_datetime in µs)."""

    COLUMNS = {
        "transaction_id": ("transaction_id", np.int64),
        "tx_us": ("tx_datetime", None),
        "customer_id": ("customer_id", np.int64),
        "terminal_id": ("terminal_id", np.int64),
        "tx_amount": ("tx_amount", np.float64),
    }

    transaction_id: np.ndarray
    tx_us: np.ndarray
    customer_id: np.ndarray
    terminal_id: np.ndarray
    tx_amount: np.ndarray

    def in_time_order(self) -> TransactionRows:
        """Sorted by (time, transaction_id): the order of the tie rule."""
        return self.take(np.lexsort((self.transaction_id, self.tx_us)))


@dataclass(frozen=True)
class ReportRows(_Rows):
    """Fraud reports: the transaction and when it was reported (reported_us, µs)."""

    COLUMNS = {
        "transaction_id": ("transaction_id", np.int64),
        "reported_us": ("reported_at", None),
    }

    transaction_id: np.ndarray
    reported_us: np.ndarray


@dataclass(frozen=True)
class FeatureBatch:
    """Features of transactions: ``values[k]`` holds ``columns`` of ``transaction_id[k]``
    (float64; counts and flags are whole numbers, exact in a double)."""

    transaction_id: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.transaction_id)

    def to_frame(self) -> pd.DataFrame:
        """One row per transaction with the gold table's column types (counts bigint, flags int)."""
        frame = pd.DataFrame(self.values, columns=list(self.columns))
        for column in self.columns:
            if column.startswith("tx_during_"):
                frame[column] = frame[column].astype("int32")
            elif "_nb_tx_" in column or "_reported_frauds_" in column:
                frame[column] = frame[column].astype("int64")
        frame.insert(0, "transaction_id", self.transaction_id)
        return frame

    def row(self, k: int = 0) -> dict[str, float]:
        """The features of the k-th transaction, by name (a model's single-row input)."""
        return dict(zip(self.columns, self.values[k].tolist(), strict=True))
