"""Reading what a dbt build wrote in a test's own warehouse (the one its environment names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.warehouse import Warehouse
from support.common import REPO_ROOT


def dbt_env(workdir: Path, landing_root: Path | None = None) -> dict[str, str]:
    """Environment of a test's own dbt build: the DuckDB file and dbt's logs in ``workdir``,
    the landing root (default: ``workdir/landing``)."""
    return {
        "FRAUDOPS_DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
        "FRAUDOPS_LANDING_ROOT": str(landing_root or workdir / "landing"),
        "DBT_LOG_PATH": str(workdir / "logs"),
    }


@contextmanager
def warehouse_of(env: dict[str, str]) -> Iterator[Warehouse]:
    """The warehouse of the dbt profile under ``env`` (FRAUDOPS_DUCKDB_PATH...), read-only."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings(
            dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)}
        )
        with Runtime.build(settings).warehouse(read_only=True) as warehouse:
            yield warehouse


def read_tables(env: dict[str, str], relations: list[str]) -> dict[str, pd.DataFrame]:
    """Every row of each of ``relations`` in the warehouse of ``env``."""
    with warehouse_of(env) as warehouse:
        return {relation: warehouse.read(relation) for relation in relations}
