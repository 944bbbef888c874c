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
from collections.abc import Iterator, Mapping, Sequence
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
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def duckdb_path(target: Target) -> Path:
    """The DuckDB file of a ``duckdb`` target (a relative path is relative to the project)."""
    path = Path(target.config.get("path", "warehouse/fraudops.duckdb"))
    return path if path.is_absolute() else target.project_dir / path


def prepare_target(settings: Settings, target: str | None = None) -> None:
    """Create what a first dbt run on ``target`` needs on this machine: the folder of the DuckDB
    file (git-ignored, so absent from a fresh clone; DuckDB creates the file, not its folder).
    Nothing for other targets."""
    resolved = resolve_target(settings, target)
    if resolved.type == "duckdb":
        duckdb_path(resolved).parent.mkdir(parents=True, exist_ok=True)


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
        frame = self.read_unmatched(relation, [date_column], key, other, other_where, date_column, start, end)
        counts = pd.to_datetime(frame[date_column]).dt.date.value_counts()
        return {day: int(n) for day, n in sorted(counts.items())}

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
        path = duckdb_path(target)
        if read_only and not path.exists():
            raise DataNotReadyError(f"warehouse {path} does not exist yet; run `dbt build` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            # the profile's DuckDB settings (memory_limit, threads, temp_directory), as dbt applies them
            settings = {key: str(value) for key, value in (target.config.get("config_options") or {}).items()}
            if "temp_directory" in settings:  # relative to the project, like the file
                settings["temp_directory"] = str(target.project_dir / settings["temp_directory"])
            try:
                self.con = duckdb.connect(str(path), read_only=read_only, config=settings)
            except duckdb.ConnectionException:  # open in this process already, with its own settings
                self.con = duckdb.connect(str(path), read_only=read_only)
            self.con.execute("set enable_progress_bar = false")  # ml prints its own output
        except duckdb.IOException as exc:
            raise DataNotReadyError(f"cannot open warehouse {path} ({str(exc).splitlines()[0]}); is another process (dbt?) writing it?") from None

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
        self, relation, columns, key, other, other_where=None, date_column=None, start=None, end=None
    ) -> pd.DataFrame:
        _check_relation(relation)
        names = [*columns, key, *(other_where or {}), *([date_column] if date_column else [])]
        bad = [n for n in names if not _COLUMN.match(n)]
        if bad:
            raise ConfigError(f"invalid column name(s) {', '.join(map(repr, bad))}")
        if not self.exists(other):
            return self.read(relation, columns, date_column, start, end)
        sql, params = self._unmatched_select(relation, columns, key, other, other_where, date_column, start, end)
        return self.con.execute(sql, params).df()

    def count_unmatched_by_day(
        self, relation, key, other, other_where, date_column, start=None, end=None
    ) -> dict[dt.date, int]:
        sql, params = self._unmatched_select(relation, [date_column], key, other, other_where, date_column, start, end)
        rows = self.con.execute(f"select {date_column}, count(*) from ({sql}) group by 1 order by 1", params).fetchall()
        return {pd.Timestamp(day).date(): int(n) for day, n in rows}

    def _unmatched_select(
        self, relation, columns, key, other, other_where, date_column, start, end
    ) -> tuple[str, list[str]]:
        """The SELECT of :meth:`read_unmatched` (an anti-join) and its parameters."""
        _check_relation(relation)
        names = [*columns, key, *(other_where or {}), *([date_column] if date_column else [])]
        bad = [n for n in names if not _COLUMN.match(n)]
        if bad:
            raise ConfigError(f"invalid column name(s) {', '.join(map(repr, bad))}")
        where = []
        if date_column and start:
            where.append(f"r.{date_column} >= {_sql_literal(start)}")
        if date_column and end:
            where.append(f"r.{date_column} <= {_sql_literal(end)}")
        params = []
        if self.exists(other):
            matched = " and ".join([f"o.{key} = r.{key}", *(f"o.{c} = ?" for c in other_where or {})])
            where.append(f"not exists (select 1 from {_check_relation(other)} as o where {matched})")
            params = [str(v) for v in (other_where or {}).values()]
        cols = ", ".join(f"r.{c}" for c in columns)
        sql = f"select {cols} from {relation} as r where {' and '.join(where) or 'true'}"
        return sql, params

    def write(self, df, relation, mode="append", keys=None) -> int:
        schema, _table = self._split(relation)
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


# --- Spark / Databricks ------------------------------------------------------------------------

#: Table format per target type: parquet on local Spark (no Delta jars), Delta on Databricks.
SPARK_TABLE_FORMATS = {"spark": "parquet", "databricks": "delta"}
_DERBY_HOME = re.compile(r"(-Dderby\.system\.home=)(\S+)")
_DERBY_LOCKED = "Another instance of Derby may have already booted the database"
_METASTORE_URL = "spark.hadoop.javax.jdo.option.ConnectionURL"
_INTEGER_DTYPES = {"tinyint": "Int8", "smallint": "Int16", "int": "Int32", "bigint": "Int64"}


def local_spark_conf(target: Target) -> dict[str, str]:
    """The dbt ``spark`` target's ``server_side_parameters`` with its paths made absolute.

    dbt-spark's session method runs in the project directory, so relative warehouse/metastore
    paths there mean ``project_dir/...``; resolving them here lets ``ml`` (run from anywhere)
    open the very same Hive metastore and parquet warehouse.
    """
    conf = {str(k): str(v) for k, v in (target.config.get("server_side_parameters") or {}).items()}

    def absolute(path: str) -> str:
        return path if Path(path).is_absolute() else str(target.project_dir / path)

    if "spark.sql.warehouse.dir" in conf:
        conf["spark.sql.warehouse.dir"] = absolute(conf["spark.sql.warehouse.dir"])
    if "spark.driver.extraJavaOptions" in conf:
        conf["spark.driver.extraJavaOptions"] = _DERBY_HOME.sub(
            lambda m: m.group(1) + absolute(m.group(2)), conf["spark.driver.extraJavaOptions"]
        )
    conf.setdefault("spark.sql.session.timeZone", "UTC")
    # as dbt-spark does (it forces ANSI off), so that SQL in both behaves alike
    conf["spark.sql.ansi.enabled"] = "false"
    conf["spark.sql.execution.arrow.pyspark.enabled"] = "true"
    return conf


def _spark_session(target: Target) -> tuple[Any, bool]:
    """(session, owned): the active session if there is one (Databricks job, notebook, tests),
    else a new local session with the dbt target's settings (``spark``) or a Databricks Connect
    session (``databricks``, if databricks-connect is installed)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(f"target {target.name!r} needs pyspark: pip install 'fraudops[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if target.type == "databricks":
        try:
            from databricks.connect import DatabricksSession  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(
                "target 'databricks' needs a Spark session: run ml in a Databricks job or notebook "
                "(or install databricks-connect to run it from here)"
            ) from None
        return DatabricksSession.builder.getOrCreate(), False
    builder = SparkSession.builder.appName(f"fraudops-ml-{target.name}").enableHiveSupport()
    for key, value in local_spark_conf(target).items():
        builder = builder.config(key, value)
    return builder.getOrCreate(), True


def pandas_to_spark(spark: Any, df: pd.DataFrame) -> Any:
    """``df`` as a Spark DataFrame, through Arrow. Naive datetimes are UTC and become TIMESTAMP
    (Spark 4 would make them TIMESTAMP_NTZ, which dbt's models never produce); an all-null
    object column becomes a string column."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql.types import NullType, StringType, TimestampNTZType

    frame = df.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]) and frame[column].dt.tz is None:
            frame[column] = frame[column].dt.tz_localize("UTC")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # pandas 3 strings arrive as large_string; Spark reads them as plain strings
    table = table.cast(
        pa.schema(
            [pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema]
        )
    )
    sdf = spark.createDataFrame(table)
    for field in sdf.schema.fields:
        if isinstance(field.dataType, TimestampNTZType):
            sdf = sdf.withColumn(field.name, F.col(field.name).cast("timestamp"))
        elif isinstance(field.dataType, NullType):
            sdf = sdf.withColumn(field.name, F.col(field.name).cast(StringType()))
    return sdf


def _quote(relation: str) -> str:
    return ".".join(f"`{part}`" for part in relation.split("."))


class SparkWarehouse(Warehouse):
    """Tables of a ``spark`` (dbt-spark, local Hive metastore, parquet) or ``databricks``
    (dbt-databricks, Unity Catalog, Delta) target, through a SparkSession.

    On Databricks the job's active session is used and relations ``schema.table`` live in the
    target's catalog. Locally a session is built with the dbt ``spark`` target's settings (same
    metastore, same warehouse folder) and stopped on close.

    Atomicity of :meth:`write`:

    * Delta (Databricks): every statement is one ACID transaction. ``append`` and ``insert_new``
      are a single ``INSERT ... SELECT`` (``insert_new`` anti-joins the table in that same
      statement), ``overwrite`` a single ``CREATE OR REPLACE TABLE ... AS SELECT``: readers see
      the old or the new table, never a mix, and a failure changes nothing.
    * parquet (local Spark): there are no transactions. A single ``INSERT`` commits its files at
      job commit (the output committer renames them from a temporary folder), so a failed insert
      adds nothing and readers do not see half of it. ``overwrite`` first writes a staging table
      completely, then swaps it in (drop + rename, two metastore operations): the table is
      never half-written, but for a moment it does not exist. Use Delta where that matters.
    """

    def __init__(self, target: Target, session: Any = None):
        if target.type not in SPARK_TABLE_FORMATS:
            raise ConfigError(f"target {target.name!r} has type {target.type!r}, not spark or databricks")
        self.target = target
        self.table_format = SPARK_TABLE_FORMATS[target.type]
        self.catalog = str(target.config.get("catalog") or "") if target.type == "databricks" else ""
        if session is None:
            session, self._owned = _spark_session(target)
        else:
            self._owned = False
        url = local_spark_conf(target).get(_METASTORE_URL, "") if self._owned else ""
        # shutting down the one embedded Derby database (not the whole Derby system) releases
        # its lock and lets a later session in this process boot it again
        self._derby_shutdown_url = (
            url.replace(";create=true", "") + ";shutdown=true" if url.startswith("jdbc:derby:") else ""
        )
        self.spark = session
        if self.catalog:
            self.spark.catalog.setCurrentCatalog(self.catalog)

    # -- names ------------------------------------------------------------------------------
    def _name(self, relation: str) -> str:
        """``catalog.schema.table`` on Databricks, ``schema.table`` on local Spark."""
        parts = _check_relation(relation).split(".")
        if len(parts) == 2 and self.catalog:
            parts = [self.catalog, *parts]
        return ".".join(parts)

    def location(self, relation: str) -> str:
        name = self._name(relation)
        return name if self.catalog else f"spark_catalog.{name}"

    # -- queries ----------------------------------------------------------------------------
    def _sql(self, statement: str) -> Any:
        try:
            return self.spark.sql(statement)
        except Exception as exc:
            if _DERBY_LOCKED in str(exc):
                raise DataNotReadyError(
                    f"the Spark metastore of target {self.target.name!r} is in use by another process "
                    "(dbt?); wait for it to finish and retry"
                ) from None
            raise

    def exists(self, relation: str) -> bool:
        try:
            return bool(self.spark.catalog.tableExists(self._name(relation)))
        except Exception as exc:
            if _DERBY_LOCKED in str(exc):
                self._sql("select 1")  # raises the one-line DataNotReadyError
            raise

    def columns(self, relation: str) -> list[str]:
        return list(self.spark.table(self._name(relation)).columns)

    def read(self, relation, columns=None, date_column=None, start=None, end=None) -> pd.DataFrame:
        frame = self._between(self.spark.table(self._name(relation)), date_column, start, end)
        if columns:
            frame = frame.select(*columns)
        return self._to_pandas(frame)

    @staticmethod
    def _between(frame: Any, date_column: str | None, start: dt.date | None, end: dt.date | None) -> Any:
        """Rows with ``start <= date_column <= end`` (filtered before any projection)."""
        if date_column and start:
            frame = frame.where(f"`{date_column}` >= {_sql_literal(start)}")
        if date_column and end:
            frame = frame.where(f"`{date_column}` <= {_sql_literal(end)}")
        return frame

    def read_unmatched(
        self, relation, columns, key, other, other_where=None, date_column=None, start=None, end=None
    ) -> pd.DataFrame:
        from pyspark.sql import functions as F

        frame = self._between(self.spark.table(self._name(relation)), date_column, start, end)
        if self.exists(other):
            seen = self.spark.table(self._name(other))
            for column, value in (other_where or {}).items():
                seen = seen.where(F.col(column) == F.lit(str(value)))
            frame = frame.join(seen.select(key).distinct(), on=key, how="left_anti")
        return self._to_pandas(frame.select(*columns))

    def scalar(self, sql: str) -> Any:
        row = self._sql(sql).first()
        if row is None:
            return None
        value = row[0]
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            # PySpark returns TIMESTAMP values in the Python process's local time zone
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def _to_pandas(self, frame: Any) -> pd.DataFrame:
        """Rows as pandas with the dtypes DuckDBWarehouse.read gives: dates and timestamps as
        naive UTC ``datetime64[us]``, integer columns with nulls as nullable ``Int64``-style."""
        types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
        if hasattr(frame, "toArrow"):  # PySpark >= 4: timestamps arrive as UTC instants
            out = frame.toArrow().to_pandas()
            session_tz = None
        else:  # PySpark 3.5 (older Databricks runtimes): naive, in the session time zone
            out = frame.toPandas()
            session_tz = self.spark.conf.get("spark.sql.session.timeZone")
        for column, sql_type in types.items():
            series = out[column]
            if sql_type == "date":
                out[column] = pd.to_datetime(series).astype("datetime64[us]")
            elif sql_type in ("timestamp", "timestamp_ntz"):
                series = pd.to_datetime(series)
                if sql_type == "timestamp" and series.dt.tz is None and session_tz:
                    series = series.dt.tz_localize(session_tz)
                if series.dt.tz is not None:
                    series = series.dt.tz_convert("UTC").dt.tz_localize(None)
                out[column] = series.astype("datetime64[us]")
            elif sql_type in _INTEGER_DTYPES and series.isna().any():
                out[column] = series.astype(_INTEGER_DTYPES[sql_type])
            elif sql_type == "boolean" and series.isna().any():
                out[column] = series.astype("boolean")
        return out

    # -- writes -----------------------------------------------------------------------------
    def _create_as(self, name: str, view: str, replace: bool = False) -> None:
        verb = "create or replace table" if replace else "create table"
        self._sql(f"{verb} {_quote(name)} using {self.table_format} as select * from {view}")

    def write(self, df, relation, mode="append", keys=None) -> int:
        import uuid

        if mode not in ("append", "overwrite", "insert_new"):
            raise ValueError(f"unknown write mode {mode!r}")
        if mode == "insert_new" and not keys:
            raise ValueError("insert_new needs keys")
        name = self._name(relation)
        schema = name.rsplit(".", 1)[0]
        incoming = pandas_to_spark(self.spark, df)
        view = f"_fraudops_incoming_{uuid.uuid4().hex}"
        incoming.createOrReplaceTempView(view)
        try:
            self._sql(f"create schema if not exists {_quote(schema)}")
            if not self.spark.catalog.tableExists(name):
                self._create_as(name, view)
                return len(df)
            if mode == "overwrite":
                self._overwrite(name, view)
                return len(df)
            target_types = {f.name: f.dataType.simpleString() for f in self.spark.table(name).schema.fields}
            unknown = [c for c in df.columns if c not in target_types]
            if unknown:
                raise DataNotReadyError(f"table {relation} has no column(s) {', '.join(unknown)}; overwrite it or migrate it")
            columns = ", ".join(f"`{c}`" for c in df.columns)
            select = ", ".join(f"cast(i.`{c}` as {target_types[c]}) as `{c}`" for c in df.columns)
            if mode == "append":
                self._sql(f"insert into {_quote(name)} ({columns}) select {select} from {view} as i")
                return len(df)
            on = " and ".join(f"t.`{k}` <=> i.`{k}`" for k in keys)
            before = self.spark.table(name).count()
            self._sql(
                f"insert into {_quote(name)} ({columns}) select {select} from {view} as i "
                f"left anti join {_quote(name)} as t on {on}"
            )
            return int(self.spark.table(name).count() - before)
        finally:
            self.spark.catalog.dropTempView(view)

    def _overwrite(self, name: str, view: str) -> None:
        if self.table_format == "delta":
            self._create_as(name, view, replace=True)
            return
        # parquet: write the new table completely, then swap it in
        staging = f"{name}__fraudops_staging"
        self._sql(f"drop table if exists {_quote(staging)}")
        self._create_as(staging, view)
        self._sql(f"drop table {_quote(name)}")
        from pyspark.errors import PySparkException

        try:
            self._sql(f"alter table {_quote(staging)} rename to {_quote(name)}")
        except PySparkException as exc:
            raise DataNotReadyError(
                f"overwrite of {name} stopped after dropping the old table; the new rows are in "
                f"{staging}: rename it to {name} ({str(exc).splitlines()[0][:200]})"
            ) from None

    def close(self) -> None:
        import contextlib

        if not self._owned:
            return
        jvm = getattr(self.spark, "_jvm", None) if self._derby_shutdown_url else None
        self.spark.stop()
        if jvm is not None:
            # The embedded Derby metastore stays locked until it is shut down (or the JVM exits):
            # release it, so that dbt can open the metastore after us in the same workflow.
            from py4j.protocol import Py4JJavaError

            # Derby reports a successful shutdown as an SQLException (08006)
            with contextlib.suppress(Py4JJavaError):
                jvm.java.sql.DriverManager.getConnection(self._derby_shutdown_url)


@contextmanager
def open_warehouse(settings: Settings, target: str | None = None, read_only: bool = False) -> Iterator[Warehouse]:
    """Open the warehouse behind a dbt target; close it on exit."""
    resolved = resolve_target(settings, target)
    if resolved.type == "duckdb":
        wh: Warehouse = DuckDBWarehouse(resolved, read_only=read_only)
    elif resolved.type in SPARK_TABLE_FORMATS:
        wh = SparkWarehouse(resolved)
    else:
        raise ConfigError(f"target {resolved.name!r} has type {resolved.type!r}, which ml cannot read yet")
    try:
        yield wh
    finally:
        wh.close()
