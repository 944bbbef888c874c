"""Fixtures of the operations tests (helpers: tests/support/)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.common import make_feature_frame, mlflow_env, write_feature_table
from support.datarobot import isolate
from support.report import register_aliases, write_report_warehouse
from support.shadow import fit_both, write_datarobot_csv, write_our_predictions

from ml.platform.settings import Settings, load_settings


@dataclass
class ShadowWorld:
    root: Path
    settings: Settings
    frame: pd.DataFrame  # the scored rows of the gold table
    ours: pd.DataFrame  # our rows of scoring.predictions
    incumbent_scores: pd.Series  # by transaction_id
    csv: Path


@pytest.fixture(scope="module")
def shadow_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShadowWorld]:
    """The generated gold table; our gradient boosting's predictions in scoring.predictions; a
    logistic regression trained on the same days, acting as the incumbent, in a DataRobot CSV."""
    root = tmp_path_factory.mktemp("shadow")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        (root / "fraudops.yaml").write_text(yaml.safe_dump({"landing": {"root": str(root)}}))
        settings = load_settings()
        frame = make_feature_frame()
        write_feature_table(settings, frame)
        ours, theirs, scored = fit_both(frame, settings.model.features)
        ids = frame.loc[scored, "transaction_id"].to_numpy()
        threshold = settings.model.alert_threshold
        rows = write_our_predictions(settings, ids, ours, threshold)
        csv = write_datarobot_csv(root / "datarobot.csv", ids, theirs, 0.3, settings.model.label)
        yield ShadowWorld(
            root, settings, frame.loc[scored], rows, pd.Series(theirs, index=ids), csv
        )


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
