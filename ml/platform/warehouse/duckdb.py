"""DuckDB: the embedded warehouse of the ``local`` target (dbt-duckdb)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd

from ml.platform.errors import DataNotReadyError
from ml.platform.targets import Target, duckdb_path
from ml.platform.warehouse.base import (
    Warehouse,
    _check_columns,
    _check_relation,
    _order_by,
    _sql_literal,
)


class WarehouseBusyError(DataNotReadyError):
    """Another process holds the DuckDB file (one writer at a time)."""


def _open_error(path: Any, exc: Exception) -> DataNotReadyError:
    """One line for a DuckDB file that cannot be opened: busy (another process holds its lock:
    dbt, ``ml score``, ``ml replay``...) or unreadable."""
    detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "lock" in detail.lower():
        holder = re.search(r"held in (\S+) \(PID (\d+)\)", detail)
        who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
        return WarehouseBusyError(
            f"warehouse {path} is busy: {who} is writing it (dbt, ml score, ml replay...); "
            "wait for it to finish, then re-run"
        )
    return DataNotReadyError(f"cannot open warehouse {path} ({detail})")


class DuckDBWarehouse(Warehouse):
    """DuckDB file of the ``local`` target (dbt-duckdb)."""

    def __init__(self, target: Target, read_only: bool = False, memory_limit: str | None = None):
        """``memory_limit``: DuckDB's buffer pool, instead of the profile's ``memory_limit``
        (when this opens the file first in the process)."""
        import duckdb

        self.target = target
        path = duckdb_path(target)
        if read_only and not path.exists():
            raise DataNotReadyError(f"warehouse {path} does not exist yet; run `dbt build` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            # the profile's DuckDB settings (memory_limit, threads, temp_directory), as dbt applies them
            settings = {
                key: str(value)
                for key, value in (target.config.get("config_options") or {}).items()
            }
            if memory_limit:
                settings["memory_limit"] = memory_limit
            if "temp_directory" in settings:  # relative to the project, like the file
                settings["temp_directory"] = str(target.project_dir / settings["temp_directory"])
            try:
                self.con = duckdb.connect(str(path), read_only=read_only, config=settings)
            except duckdb.ConnectionException:  # open in this process already, with its settings
                self.con = duckdb.connect(str(path), read_only=read_only)
            self.con.execute("set enable_progress_bar = false")  # ml prints its own output
        except duckdb.IOException as exc:
            raise _open_error(path, exc) from None

    def close(self) -> None:
        self.con.close()

    def location(self, relation: str) -> str:
        """The DuckDB file holding ``relation``."""
        _check_relation(relation)
        return str(self.path)

    def _split(self, relation: str) -> tuple[str, str]:
        parts = _check_relation(relation).split(".")
        return parts[-2], parts[-1]

    def exists(self, relation: str) -> bool:
        schema, table = self._split(relation)
        return bool(
            self.con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()[0][0]
        )

    def columns(self, relation: str) -> list[str]:
        schema, table = self._split(relation)
        rows = self.con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
        return [r[0] for r in rows]

    def read(
        self, relation, columns=None, date_column=None, start=None, end=None, order_by=()
    ) -> pd.DataFrame:
        _check_relation(relation)
        cols = ", ".join(columns) if columns else "*"
        where = []
        if date_column and start:
            where.append(f"{date_column} >= {_sql_literal(start)}")
        if date_column and end:
            where.append(f"{date_column} <= {_sql_literal(end)}")
        sql = f"select {cols} from {relation}" + (f" where {' and '.join(where)}" if where else "")
        return self.con.execute(sql + _order_by(order_by)).df()

    def scalar(self, sql: str) -> Any:
        # fetchall, not fetchone: DuckDB >= 2 refuses register() while a result is unfinished
        rows = self.con.execute(sql).fetchall()
        return rows[0][0] if rows else None

    def read_unmatched(
        self,
        relation,
        columns,
        key,
        other,
        other_where=None,
        date_column=None,
        start=None,
        end=None,
    ) -> pd.DataFrame:
        sql, params = self._unmatched_select(
            relation, columns, key, other, other_where, date_column, start, end
        )
        return self.con.execute(sql, params).df()

    def count_unmatched_by_day(
        self, relation, key, other, other_where, date_column, start=None, end=None
    ) -> dict[dt.date, int]:
        sql, params = self._unmatched_select(
            relation, [date_column], key, other, other_where, date_column, start, end
        )
        rows = self.con.execute(
            f"select {date_column}, count(*) from ({sql}) group by 1 order by 1", params
        ).fetchall()
        return {pd.Timestamp(day).date(): int(n) for day, n in rows}

    def _unmatched_select(
        self, relation, columns, key, other, other_where, date_column, start, end
    ) -> tuple[str, list[str]]:
        """The SELECT of :meth:`read_unmatched` (an anti-join) and its parameters."""
        _check_relation(relation)
        _check_columns(
            [*columns, key, *(other_where or {}), *([date_column] if date_column else [])]
        )
        where = []
        if date_column and start:
            where.append(f"r.{date_column} >= {_sql_literal(start)}")
        if date_column and end:
            where.append(f"r.{date_column} <= {_sql_literal(end)}")
        params: list[str] = []
        if self.exists(other):
            matched = " and ".join(
                [f"o.{key} = r.{key}", *(f"o.{c} = ?" for c in other_where or {})]
            )
            where.append(
                f"not exists (select 1 from {_check_relation(other)} as o where {matched})"
            )
            params = [str(v) for v in (other_where or {}).values()]
        cols = ", ".join(f"r.{c}" for c in columns)
        sql = f"select {cols} from {relation} as r where {' and '.join(where) or 'true'}"
        return sql, params

    def write(self, df, relation, mode="append", keys=None) -> int:
        return self.write_many([(df, relation, mode, keys)])[0]

    def write_many(self, writes) -> list[int]:
        """All writes in one DuckDB transaction: all of them or none."""
        if any(mode == "insert_new" and not keys for _, _, mode, keys in writes):
            raise ValueError("insert_new needs keys")
        views = [f"_fraudops_incoming_{i}" for i in range(len(writes))]
        for view, (df, *_rest) in zip(views, writes, strict=True):
            self.con.register(view, df)
        try:
            self.con.execute("begin transaction")
            try:
                added = [
                    self._write_in_transaction(view, len(w[0]), *w[1:])
                    for view, w in zip(views, writes, strict=True)
                ]
                self.con.execute("commit")
            except Exception:
                self.con.execute("rollback")
                raise
        finally:
            for view in views:
                self.con.unregister(view)
        return added

    def _write_in_transaction(self, view: str, rows: int, relation: str, mode: str, keys) -> int:
        schema, _table = self._split(relation)
        self.con.execute(f"create schema if not exists {schema}")
        if mode == "overwrite" or not self.exists(relation):
            self.con.execute(f"create or replace table {relation} as select * from {view}")
            return rows
        if mode == "append":
            self.con.execute(f"insert into {relation} by name select * from {view}")
            return rows
        on = " and ".join(f"t.{k} = i.{k}" for k in keys)
        before = self.scalar(f"select count(*) from {relation}")
        self.con.execute(
            f"insert into {relation} by name select i.* from {view} as i "
            f"where not exists (select 1 from {relation} as t where {on})"
        )
        return int(self.scalar(f"select count(*) from {relation}") - before)
