"""Shared pytest fixtures: isolated settings (warehouse + MLflow under tmp_path) and a small,
generated gold feature table.

* ``warehouse_env`` — points the dbt profile (FRAUDOPS_DUCKDB_PATH, FRAUDOPS_LANDING_ROOT) and
  the settings file at tmp_path, so nothing touches the repository's warehouse.
* ``mlflow_settings`` — Settings with MLflow tracking at ``sqlite:///{tmp_path}/mlflow.db`` and
  artifacts under tmp_path (dbt project/profiles = the repository).
* ``feature_table`` — writes :func:`make_feature_frame` into ``gold.transaction_features`` of the
  tmp warehouse (through ml.warehouse) and returns the frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.browser import Chromium, find_chromium
from support.common import (
    copy_mlflow_db,
    make_feature_frame,
    mlflow_env,
    write_feature_table,
)
from support.spark import spark_session

from ml.platform.settings import Settings, load_settings


@pytest.fixture(scope="session")
def feature_frame() -> pd.DataFrame:
    """The default generated feature table (built once per session; do not mutate)."""
    return make_feature_frame()


@pytest.fixture
def warehouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate the dbt profile's DuckDB file, the landing root and the settings file in tmp_path."""
    monkeypatch.setenv("FRAUDOPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("FRAUDOPS_LANDING_ROOT", str(tmp_path / "landing"))
    monkeypatch.setenv("FRAUDOPS_SETTINGS_FILE", str(tmp_path / "no-fraudops.yaml"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.delenv("FRAUDOPS_TARGET", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store, created once (migrations take seconds); copy it
    with :func:`copy_mlflow_db` instead of letting each test create its own."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_settings(
    tmp_path: Path, warehouse_env: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path
) -> Settings:
    """Settings tracking to ``sqlite:///{tmp_path}/mlflow.db``, warehouse in tmp_path; set as
    environment variables too, so the CLI (which loads its own settings) sees the same."""
    copy_mlflow_db(mlflow_db_template, tmp_path)
    for key, value in mlflow_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture
def feature_table(mlflow_settings: Settings, feature_frame: pd.DataFrame) -> pd.DataFrame:
    """``gold.transaction_features`` in the tmp warehouse, filled with ``feature_frame``."""
    write_feature_table(mlflow_settings, feature_frame)
    return feature_frame


@pytest.fixture
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path with no project settings file or FRAUDOPS__ override leaking in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRAUDOPS_SETTINGS_FILE", raising=False)
    for name in [n for n in os.environ if n.startswith("FRAUDOPS__")]:
        monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local PySpark session per test process (support/spark.py: spark_session)."""
    yield from spark_session(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    """Headless Chromium (tests/browser.py) for the HTML pages: the report, the model card."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: `make browser` should have installed it")
        pytest.skip("no Chromium here: run `make browser` (apt-get install chromium)")
    with Chromium.launch(tmp_path_factory.mktemp("chromium"), executable) as browser:
        yield browser
