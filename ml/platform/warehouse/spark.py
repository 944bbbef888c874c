"""Spark: local PySpark (dbt-spark ``session``, parquet) and Databricks (Unity Catalog, Delta)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ml.platform.errors import ConfigError, DataNotReadyError
from ml.platform.targets import Target
from ml.platform.warehouse.base import Warehouse, _check_columns, _check_relation, _sql_literal

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
        raise ConfigError(
            f"target {target.name!r} needs pyspark: pip install 'fraudops[spark]'"
        ) from None
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
            [
                pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                for f in table.schema
            ]
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
            raise ConfigError(
                f"target {target.name!r} has type {target.type!r}, not spark or databricks"
            )
        self.target = target
        self.table_format = SPARK_TABLE_FORMATS[target.type]
        self.catalog = (
            str(target.config.get("catalog") or "") if target.type == "databricks" else ""
        )
        if session is None:
            session, self._owned = _spark_session(target)
        else:
            self._owned = False
        url = local_spark_conf(target).get(_METASTORE_URL, "") if self._owned else ""
        # shutting down the one embedded Derby database (not the whole Derby system) releases
        # its lock and lets a later session in this process boot it again
        self._derby_shutdown_url = (
            url.replace(";create=true", "") + ";shutdown=true"
            if url.startswith("jdbc:derby:")
            else ""
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

    def read(
        self, relation, columns=None, date_column=None, start=None, end=None, order_by=()
    ) -> pd.DataFrame:
        frame = self._between(self.spark.table(self._name(relation)), date_column, start, end)
        if columns:
            frame = frame.select(*columns)
        if order_by:
            frame = frame.orderBy(*_check_columns(order_by))
        return self._to_pandas(frame)

    @staticmethod
    def _between(
        frame: Any, date_column: str | None, start: dt.date | None, end: dt.date | None
    ) -> Any:
        """Rows with ``start <= date_column <= end`` (filtered before any projection)."""
        if date_column and start:
            frame = frame.where(f"`{date_column}` >= {_sql_literal(start)}")
        if date_column and end:
            frame = frame.where(f"`{date_column}` <= {_sql_literal(end)}")
        return frame

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
            target_types = {
                f.name: f.dataType.simpleString() for f in self.spark.table(name).schema.fields
            }
            unknown = [c for c in df.columns if c not in target_types]
            if unknown:
                raise DataNotReadyError(
                    f"table {relation} has no column(s) {', '.join(unknown)}; overwrite it or migrate it"
                )
            columns = ", ".join(f"`{c}`" for c in df.columns)
            select = ", ".join(f"cast(i.`{c}` as {target_types[c]}) as `{c}`" for c in df.columns)
            if mode == "append":
                self._sql(
                    f"insert into {_quote(name)} ({columns}) select {select} from {view} as i"
                )
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
