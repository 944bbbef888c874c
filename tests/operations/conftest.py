"""Fixtures of the operations tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.common import mlflow_env
from support.report import register_aliases, write_report_warehouse

from ml.platform.settings import Settings, load_settings


@pytest.fixture
def replay_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path):
    """Returns ``use(name)``: points the warehouse and dbt target at ``tmp_path/name`` (an MLflow
    store copied from the migrated template) and returns that folder."""
    monkeypatch.delenv("FRAUDOPS_TARGET", raising=False)
    monkeypatch.delenv("FRAUDOPS_SETTINGS_FILE", raising=False)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(key, raising=False)

    def use(name: str) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "mlflow.db").exists():
            shutil.copyfile(mlflow_db_template, root / "mlflow.db")
        monkeypatch.setenv("FRAUDOPS_DUCKDB_PATH", str(root / "warehouse.duckdb"))
        monkeypatch.setenv("DBT_TARGET_PATH", str(root / "target"))
        return root

    return use


@pytest.fixture
def report_settings(warehouse_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with the warehouse and MLflow under tmp_path, also as environment variables (for
    the CLI); no MLflow store exists (tests that need a registry use ``mlflow_settings``)."""
    for key, value in mlflow_env(warehouse_env).items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture
def full_warehouse(mlflow_settings: Settings, tmp_path: Path):
    """Every input of the report, plus a registry with champion v2 / challenger v3 / previous v1."""
    written = write_report_warehouse(mlflow_settings)
    register_aliases(mlflow_settings, tmp_path / "model-files")
    return written
