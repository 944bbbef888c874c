"""The narrow read/write interface every engine implements (:class:`Warehouse`)."""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from ml.platform.errors import ConfigError, DataNotReadyError
from ml.platform.targets import Target

WriteMode = Literal["append", "overwrite", "insert_new"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_relation(relation: str) -> str:
    if not _IDENTIFIER.match(relation):
        raise ConfigError(f"invalid relation name {relation!r}: expected schema.table")
    return relation


class Warehouse(ABC):
    """Narrow read/write interface over a dbt target's warehouse."""

    target: Target

    @abstractmethod
    def exists(self, relation: str) -> bool: ...

    @abstractmethod
    def columns(self, relation: str) -> list[str]: ...

    @abstractmethod
    def read(
        self,
        relation: str,
        columns: Sequence[str] | None = None,
        date_column: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        order_by: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Rows of ``relation`` (only ``columns``), with ``start <= date_column <= end`` if given,
        sorted by ``order_by`` in the engine (cheaper than sorting the frame: no second copy)."""

    @abstractmethod
    def write(
        self,
        df: pd.DataFrame,
        relation: str,
        mode: WriteMode = "append",
        keys: Sequence[str] | None = None,
    ) -> int:
        """Write ``df`` atomically and return the number of rows added.

        ``append`` adds all rows, ``overwrite`` replaces the table, ``insert_new`` adds only the rows
        whose ``keys`` are not in the table yet (idempotent reruns). Creates schema and table as needed.
        """

    def write_many(
        self, writes: Sequence[tuple[pd.DataFrame, str, WriteMode, Sequence[str] | None]]
    ) -> list[int]:
        """:meth:`write` each ``(df, relation, mode, keys)``; rows added per write.

        Engines with multi-table transactions (DuckDB) make it one transaction. Elsewhere (Delta,
        parquet) each write is atomic on its own and they run in order, so put the table whose
        rows mark the work as done last: after a failure between two writes a rerun redoes the
        work and ``insert_new`` keeps the earlier tables free of duplicates.
        """
        return [self.write(df, relation, mode, keys) for df, relation, mode, keys in writes]

    @abstractmethod
    def scalar(self, sql: str) -> Any:
        """First column of the first row of a read-only query (for max()/count() checks)."""

    def location(self, relation: str) -> str:
        """Where ``relation`` is stored, for lineage (e.g. the MLflow dataset source)."""
        return f"{self.target.type}:{self.target.name}:{_check_relation(relation)}"

    def read_unmatched(
        self,
        relation: str,
        columns: Sequence[str],
        key: str,
        other: str,
        other_where: Mapping[str, str] | None = None,
        date_column: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`read`, but only the rows whose ``key`` has no row in ``other`` among the
        rows of ``other`` with ``column = value`` for each item of ``other_where`` (all rows if
        ``other`` does not exist). Used for incremental work: score what is not scored yet.

        This generic version anti-joins in pandas; engines override it to push the join down.
        """
        frame = self.read(relation, columns, date_column, start, end)
        if not self.exists(other):
            return frame
        where = dict(other_where or {})
        seen = self.read(other, [key, *where])
        for column, value in where.items():
            seen = seen.loc[seen[column].astype(str) == str(value)]
        return frame.loc[~frame[key].isin(seen[key])].reset_index(drop=True)

    def count_unmatched_by_day(
        self,
        relation: str,
        key: str,
        other: str,
        other_where: Mapping[str, str] | None,
        date_column: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> dict[dt.date, int]:
        """How many rows :meth:`read_unmatched` would return, per ``date_column`` day (days with
        none left out), in day order: to read them a few days at a time (``ml score``).

        This generic version reads the date column of those rows; engines override it to count
        in the warehouse."""
        frame = self.read_unmatched(
            relation, [date_column], key, other, other_where, date_column, start, end
        )
        counts = pd.to_datetime(frame[date_column]).dt.date.value_counts()
        return {day: int(n) for day, n in sorted(counts.items())}

    def require(self, relation: str, hint: str) -> None:
        if not self.exists(relation):
            raise DataNotReadyError(
                f"table {relation} does not exist in target {self.target.name!r}; {hint}"
            )

    def close(self) -> None:  # noqa: B027 - engines without a connection have nothing to close
        """Release the engine's connection (a no-op by default)."""


def _sql_literal(value: dt.date) -> str:
    return f"date '{value.isoformat()}'"


def _check_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` as a list; a ConfigError naming every one that is not a plain identifier."""
    bad = [name for name in columns if not _COLUMN.match(name)]
    if bad:
        raise ConfigError(f"invalid column name(s) {', '.join(map(repr, bad))}")
    return list(columns)


def _order_by(columns: Sequence[str]) -> str:
    """`` order by a, b`` (checked column names), or nothing."""
    return f" order by {', '.join(_check_columns(columns))}" if columns else ""
