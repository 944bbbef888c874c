"""Read-only access to a Databricks target's Unity Catalog tables through a SQL warehouse (the
Databricks SQL connector), for processes without a Spark session: ``ml serve`` as a Databricks
App bootstraps its online state from silver this way.

Connection from the dbt target (profiles.yml ``databricks``: host, http_path, catalog, and a
token if set; the http_path also from ``DATABRICKS_WAREHOUSE_ID``, an app's SQL warehouse resource); without a token, the Databricks SDK's default credentials (in a Databricks App:
the app's service principal, ``DATABRICKS_CLIENT_ID``/``_SECRET``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ml.platform.errors import ConfigError
from ml.platform.targets import Target
from ml.platform.warehouse.base import Warehouse, _check_relation, _order_by


def _connect(target: Target) -> Any:
    from databricks import sql

    config = target.config
    host, http_path = config.get("host"), config.get("http_path")
    if not http_path and os.environ.get("DATABRICKS_WAREHOUSE_ID"):  # a Databricks App resource
        http_path = f"/sql/1.0/warehouses/{os.environ['DATABRICKS_WAREHOUSE_ID']}"
    if not host or not http_path:
        raise ConfigError(
            f"target {target.name!r} needs a host and an http_path (DATABRICKS_HOST, "
            "DATABRICKS_HTTP_PATH: the SQL warehouse the server reads silver from)"
        )
    if config.get("token"):
        return sql.connect(server_hostname=host, http_path=http_path, access_token=config["token"])
    from databricks.sdk.core import Config, oauth_service_principal

    def credentials() -> Any:
        return oauth_service_principal(Config(host=f"https://{host}"))

    return sql.connect(server_hostname=host, http_path=http_path, credentials_provider=credentials)


class DatabricksSqlWarehouse(Warehouse):
    """``exists``/``columns``/``read``/``scalar`` of a Databricks target over a SQL warehouse;
    relations are ``schema.table`` of the target's catalog. Writing is not supported."""

    def __init__(self, target: Target, connect: Callable[[Target], Any] = _connect):
        self.target = target
        self.catalog = target.config.get("catalog") or "main"
        self.con = connect(target)

    def _name(self, relation: str) -> str:
        return f"{self.catalog}.{_check_relation(relation)}"

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        with self.con.cursor() as cursor:
            cursor.execute(sql, parameters or {})
            return cursor.fetchall_arrow().to_pandas()

    def exists(self, relation: str) -> bool:
        schema, table = _check_relation(relation).split(".")[-2:]
        found = self._query(
            f"select count(*) as n from {self.catalog}.information_schema.tables "
            "where table_schema = :schema and table_name = :table",
            {"schema": schema, "table": table},
        )
        return int(found["n"].iloc[0]) > 0

    def columns(self, relation: str) -> list[str]:
        schema, table = _check_relation(relation).split(".")[-2:]
        found = self._query(
            f"select column_name from {self.catalog}.information_schema.columns "
            "where table_schema = :schema and table_name = :table order by ordinal_position",
            {"schema": schema, "table": table},
        )
        return found["column_name"].tolist()

    def read(
        self,
        relation: str,
        columns: Sequence[str] | None = None,
        date_column: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        order_by: Sequence[str] = (),
    ) -> pd.DataFrame:
        where, parameters = [], {}
        if date_column and start:
            where.append(f"{date_column} >= :start")
            parameters["start"] = start
        if date_column and end:
            where.append(f"{date_column} <= :end")
            parameters["end"] = end
        sql = f"select {', '.join(columns) if columns else '*'} from {self._name(relation)}"
        sql += f" where {' and '.join(where)}" if where else ""
        return self._query(sql + _order_by(order_by), parameters)

    def scalar(self, sql: str) -> Any:
        frame = self._query(self._qualified(sql))
        return None if frame.empty else frame.iloc[0, 0]

    def _qualified(self, sql: str) -> str:
        """Bootstrap queries name ``schema.table``; on the connector the catalog is explicit."""
        for schema in ("silver.", "gold.", "bronze.", "scoring."):
            sql = sql.replace(f" {schema}", f" {self.catalog}.{schema}")
        return sql

    def write(self, df, relation, mode="append", keys=None) -> int:
        raise ConfigError("the Databricks SQL connection of ml serve is read-only")

    def close(self) -> None:
        self.con.close()
