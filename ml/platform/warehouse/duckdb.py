"""DuckDB: the embedded warehouse of the ``local`` target (dbt-duckdb)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ml.platform.errors import ConfigError, DataNotReadyError
from ml.platform.targets import Target, duckdb_path
from ml.platform.warehouse.base import _COLUMN, Warehouse, _check_relation, _sql_literal


class DuckDBWarehouse(Warehouse):
    """DuckDB file of the ``local`` target (dbt-duckdb)."""

    def __init__(self, target: Target, read_only: bool = False):
        import duckdb

        self.target = target
        path = duckdb_path(target)
        if read_only and not path.exists():
            raise DataNotReadyError(f"warehouse {path} does not exist yet; run `dbt build` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            raise DataNotReadyError(
                f"cannot open warehouse {path} ({str(exc).splitlines()[0]}); is another process (dbt?) writing it?"
            ) from None

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

    def read(self, relation, columns=None, date_column=None, start=None, end=None) -> pd.DataFrame:
        _check_relation(relation)
        cols = ", ".join(columns) if columns else "*"
        where = []
        if date_column and start:
            where.append(f"{date_column} >= {_sql_literal(start)}")
        if date_column and end:
            where.append(f"{date_column} <= {_sql_literal(end)}")
        sql = f"select {cols} from {relation}" + (f" where {' and '.join(where)}" if where else "")
        return self.con.execute(sql).df()

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
        _check_relation(relation)
        names = [*columns, key, *(other_where or {}), *([date_column] if date_column else [])]
        bad = [n for n in names if not _COLUMN.match(n)]
        if bad:
            raise ConfigError(f"invalid column name(s) {', '.join(map(repr, bad))}")
        if not self.exists(other):
            return self.read(relation, columns, date_column, start, end)
        where = []
        if date_column and start:
            where.append(f"r.{date_column} >= {_sql_literal(start)}")
        if date_column and end:
            where.append(f"r.{date_column} <= {_sql_literal(end)}")
        matched = " and ".join([f"o.{key} = r.{key}", *(f"o.{c} = ?" for c in other_where or {})])
        where.append(f"not exists (select 1 from {_check_relation(other)} as o where {matched})")
        cols = ", ".join(f"r.{c}" for c in columns)
        sql = f"select {cols} from {relation} as r where {' and '.join(where)}"
        return self.con.execute(sql, [str(v) for v in (other_where or {}).values()]).df()

    def write(self, df, relation, mode="append", keys=None) -> int:
        schema, _table = self._split(relation)
        if mode == "insert_new" and not keys:
            raise ValueError("insert_new needs keys")
        self.con.register("_fraudops_incoming", df)
        try:
            self.con.execute("begin transaction")
            self.con.execute(f"create schema if not exists {schema}")
            if mode == "overwrite" or not self.exists(relation):
                self.con.execute(
                    f"create or replace table {relation} as select * from _fraudops_incoming"
                )
                added = len(df)
            elif mode == "append":
                self.con.execute(f"insert into {relation} by name select * from _fraudops_incoming")
                added = len(df)
            else:
                on = " and ".join(f"t.{k} = i.{k}" for k in keys)
                before = self.scalar(f"select count(*) from {relation}")
                self.con.execute(
                    f"insert into {relation} by name select i.* from _fraudops_incoming as i "
                    f"where not exists (select 1 from {relation} as t where {on})"
                )
                added = self.scalar(f"select count(*) from {relation}") - before
            self.con.execute("commit")
        except Exception:
            self.con.execute("rollback")
            raise
        finally:
            self.con.unregister("_fraudops_incoming")
        return int(added)
