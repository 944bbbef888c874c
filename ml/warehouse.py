"""The only module that knows which engine is behind the dbt target.

``open_warehouse(settings)`` reads the same ``profiles.yml`` and target that dbt uses and
returns a :class:`Warehouse`. Everything else asks it to read a relation (optionally a date
range) or write a table atomically.

Relations are named ``schema.table`` (DuckDB: inside the target's database file; Spark /
Databricks: inside the target's catalog).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import pandas as pd
import yaml

from ml.errors import ConfigError, DataNotReadyError
from ml.settings import Settings

WriteMode = Literal["append", "overwrite", "insert_new"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$")


def _check_relation(relation: str) -> str:
    if not _IDENTIFIER.match(relation):
        raise ConfigError(f"invalid relation name {relation!r}: expected schema.table")
    return relation


@dataclass(frozen=True)
class Target:
    """A resolved dbt output from profiles.yml."""

    name: str
    type: str
    config: dict[str, Any]
    project_dir: Path


def _render_env(value: Any) -> Any:
    """Render dbt's ``{{ env_var('X', 'default') }}`` in profile values."""
    if isinstance(value, dict):
        return {k: _render_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_env(v) for v in value]
    if isinstance(value, str) and "{{" in value:

        def env_var(name: str, default: str | None = None) -> str:
            if name in os.environ:
                return os.environ[name]
            if default is None:
                raise ConfigError(f"profiles.yml needs environment variable {name}; set it and retry")
            return default

        return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value).render(env_var=env_var)
    return value


def resolve_target(settings: Settings, target: str | None = None) -> Target:
    """Read profiles.yml like dbt does and pick ``target`` (default: settings, then profile default)."""
    project_dir = Path(settings.dbt.project_dir).resolve()
    profiles_file = Path(settings.dbt.profiles_dir).resolve() / "profiles.yml"
    if not profiles_file.is_file():
        raise ConfigError(f"no profiles.yml in {profiles_file.parent}; set dbt.profiles_dir in settings")
    profile = (yaml.safe_load(profiles_file.read_text()) or {}).get("fraudops")
    if not profile:
        raise ConfigError(f"{profiles_file} has no 'fraudops' profile")
    name = target or os.environ.get("FRAUDOPS_TARGET") or settings.dbt.target or _render_env(profile["target"])
    outputs = profile.get("outputs", {})
    if name not in outputs:
        raise ConfigError(f"target {name!r} not in profiles.yml (have: {', '.join(outputs)})")
    config = _render_env(outputs[name])
    return Target(name=name, type=config["type"], config=config, project_dir=project_dir)


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
    ) -> pd.DataFrame:
        """Rows of ``relation`` (only ``columns``), with ``start <= date_column <= end`` if given."""

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

    @abstractmethod
    def scalar(self, sql: str) -> Any:
        """First column of the first row of a read-only query (for max()/count() checks)."""

    def require(self, relation: str, hint: str) -> None:
        if not self.exists(relation):
            raise DataNotReadyError(f"table {relation} does not exist in target {self.target.name!r}; {hint}")

    def close(self) -> None:  # pragma: no cover - trivial
        pass


def _sql_literal(value: dt.date) -> str:
    return f"date '{value.isoformat()}'"


class DuckDBWarehouse(Warehouse):
    """DuckDB file of the ``local`` target (dbt-duckdb)."""

    def __init__(self, target: Target, read_only: bool = False):
        import duckdb

        self.target = target
        path = Path(target.config.get("path", "warehouse/fraudops.duckdb"))
        if not path.is_absolute():
            path = target.project_dir / path
        if read_only and not path.exists():
            raise DataNotReadyError(f"warehouse {path} does not exist yet; run `dbt build` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            raise DataNotReadyError(f"cannot open warehouse {path} ({str(exc).splitlines()[0]}); is another process (dbt?) writing it?") from None

    def close(self) -> None:
        self.con.close()

    def _split(self, relation: str) -> tuple[str, str]:
        parts = _check_relation(relation).split(".")
        return parts[-2], parts[-1]

    def exists(self, relation: str) -> bool:
        schema, table = self._split(relation)
        return bool(
            self.con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()[0]
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
        row = self.con.execute(sql).fetchone()
        return row[0] if row else None

    def write(self, df, relation, mode="append", keys=None) -> int:
        schema, table = self._split(relation)
        if mode == "insert_new" and not keys:
            raise ValueError("insert_new needs keys")
        self.con.register("_fraudops_incoming", df)
        try:
            self.con.execute("begin transaction")
            self.con.execute(f"create schema if not exists {schema}")
            if mode == "overwrite" or not self.exists(relation):
                self.con.execute(f"create or replace table {relation} as select * from _fraudops_incoming")
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


@contextmanager
def open_warehouse(settings: Settings, target: str | None = None, read_only: bool = False) -> Iterator[Warehouse]:
    """Open the warehouse behind a dbt target; close it on exit."""
    resolved = resolve_target(settings, target)
    if resolved.type == "duckdb":
        wh: Warehouse = DuckDBWarehouse(resolved, read_only=read_only)
    else:
        raise ConfigError(f"target {resolved.name!r} has type {resolved.type!r}, which ml cannot read yet")
    try:
        yield wh
    finally:
        wh.close()
