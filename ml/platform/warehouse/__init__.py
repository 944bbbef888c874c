"""The only package that knows which engine is behind the dbt target.

:func:`open_warehouse` takes the resolved :class:`~ml.platform.targets.Target` (the one dbt
uses) and returns a :class:`Warehouse`. Everything else asks it to read a relation (optionally a
date range) or write a table atomically; code above ``ml.platform`` reaches it through
``Runtime.warehouse()``.

Relations are named ``schema.table`` (DuckDB: inside the target's database file; Spark /
Databricks: inside the target's catalog).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ml.platform.errors import ConfigError
from ml.platform.targets import Target
from ml.platform.warehouse.base import Warehouse, WriteMode
from ml.platform.warehouse.duckdb import DuckDBWarehouse
from ml.platform.warehouse.spark import (
    SPARK_TABLE_FORMATS,
    SparkWarehouse,
    local_spark_conf,
    pandas_to_spark,
)


@contextmanager
def open_warehouse(
    target: Target, read_only: bool = False, duckdb_memory_limit: str | None = None
) -> Iterator[Warehouse]:
    """Open the warehouse behind a resolved dbt target; close it on exit. ``duckdb_memory_limit``:
    DuckDB's buffer pool for this connection instead of the profile's (settings ``warehouse``)."""
    if target.type == "duckdb":
        wh: Warehouse = DuckDBWarehouse(
            target, read_only=read_only, memory_limit=duckdb_memory_limit
        )
    elif target.type in SPARK_TABLE_FORMATS:
        wh = SparkWarehouse(target)
    else:
        raise ConfigError(
            f"target {target.name!r} has type {target.type!r}, which ml cannot read yet"
        )
    try:
        yield wh
    finally:
        wh.close()


__all__ = [
    "DuckDBWarehouse",
    "SparkWarehouse",
    "Warehouse",
    "WriteMode",
    "local_spark_conf",
    "open_warehouse",
    "pandas_to_spark",
]
