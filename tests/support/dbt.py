"""Reading what a dbt build wrote in a test's own warehouse (the one its environment names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pytest

from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.warehouse import Warehouse
from support.common import REPO_ROOT


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
