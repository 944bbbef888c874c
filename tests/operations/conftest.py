"""Fixtures of the operations tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


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
