"""Builders of the registry tests' worlds (tests/lifecycle/conftest.py makes them fixtures).

* ``trained`` (session) — one real ``ml.train.train`` run (logistic regression) on the generated
  feature table, in an MLflow store and a DuckDB warehouse under a session tmp dir;
* ``reg`` — a test's own world: a copy of that warehouse in tmp_path, the shared MLflow store,
  a model name of its own (so tests do not see each other's aliases) and a settings file in
  tmp_path that both the functions and the CLI (``FRAUDOPS_SETTINGS_FILE``) read;
* :func:`add_trained_version` registers the trained model again under the test's name (the real
  artifacts: signature, training reference artifact, window tags), :func:`add_dummy_version` a
  constant-score model (a bad challenger) or one whose signature wants an extra column.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ml.lifecycle import reference
from ml.lifecycle.data import feature_matrix
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings, load_settings
from support.common import REPO_ROOT, settings_for, write_feature_table

#: Minimums the trained logistic regression passes on the generated data (and a constant model fails).
LENIENT = {
    "min_average_precision": 0.03,
    "min_roc_auc": 0.6,
    "min_card_precision_at_100": 0.0,
    "max_regression": 0.02,
}


def _isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    mp.setenv("FRAUDOPS_DUCKDB_PATH", str(root / "warehouse.duckdb"))
    mp.setenv("FRAUDOPS_LANDING_ROOT", str(root / "landing"))
    mp.setenv("FRAUDOPS_SETTINGS_FILE", str(root / "fraudops.yaml"))
    mp.setenv("DBT_TARGET_PATH", str(root / "target"))
    mp.setenv("FRAUDOPS_USER", "test-user")
    mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("FRAUDOPS_TARGET", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mp.delenv(name, raising=False)


@dataclass(frozen=True)
class Trained:
    root: Path
    settings: Settings
    model_name: str
    version: str
    frame: pd.DataFrame


def build_trained(tmp_path_factory: pytest.TempPathFactory, feature_frame: pd.DataFrame) -> Trained:
    """One real training run (logistic regression), shared by the registry and score tests."""
    from ml.lifecycle.train import train

    root = tmp_path_factory.mktemp("registry-store")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root)
        settings = settings_for(root, training={"candidates": ["logistic_regression"]})
        write_feature_table(settings, feature_frame)
        result = train(Runtime.build(settings))
    return Trained(root, settings, result.model_name, result.model_version, feature_frame)


@dataclass
class Reg:
    """One test's world (see the module docstring)."""

    tmp_path: Path
    trained: Trained
    name: str
    sections: dict[str, dict[str, Any]]

    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def rt(self) -> Runtime:
        """The runtime of the settings as they are now (the CLI builds the same)."""
        return Runtime.build(self.settings)

    def configure(self, **sections: dict[str, Any]) -> Settings:
        """Change settings sections (written to the settings file the CLI reads too)."""
        for section, values in sections.items():
            self.sections[section] = {**self.sections.get(section, {}), **values}
        (self.tmp_path / "fraudops.yaml").write_text(yaml.safe_dump(self.sections))
        return self.settings

    def client(self):
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(self.sections["mlflow"]["tracking_uri"])
        mlflow.set_registry_uri(self.sections["mlflow"]["tracking_uri"])
        return MlflowClient()

    def version(self, number: str):
        return self.client().get_model_version(self.name, str(number))

    def alias(self, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None


def build_reg(
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Reg:
    for suffix in ("", ".wal"):
        source = trained.root / f"warehouse.duckdb{suffix}"
        if source.exists():
            shutil.copy(source, tmp_path / f"warehouse.duckdb{suffix}")
    _isolate(monkeypatch, tmp_path)
    name = "fd_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    sections = {
        "dbt": {"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT), "target": "local"},
        "mlflow": {
            "tracking_uri": f"sqlite:///{trained.root}/mlflow.db",
            "artifact_location": str(trained.root / "mlartifacts"),
            "experiment": "fraudops-test",
        },
        "model": {"name": name},
        "validation": dict(LENIENT),
    }
    world = Reg(tmp_path, trained, name, sections)
    world.configure()
    world.client()  # MLflow's process-wide URIs: not those a previous test left behind
    return world


def add_trained_version(reg: Reg, alias: str | None = "challenger") -> str:
    """Register the session's trained model again as a new version of ``reg.name``."""
    import mlflow

    client = reg.client()
    source = client.get_model_version(reg.trained.model_name, reg.trained.version)
    version = mlflow.register_model(source.source, reg.name, tags=dict(source.tags))
    if alias:
        client.set_registered_model_alias(reg.name, alias, version.version)
    return str(version.version)


def add_dummy_version(
    reg: Reg,
    alias: str | None = "challenger",
    extra_column: str | None = None,
    with_reference: bool = True,
) -> str:
    """Register a constant-score model (``DummyClassifier``) as a new version of ``reg.name``.

    ``extra_column`` adds an input the feature table does not have (a signature mismatch);
    ``with_reference`` logs the training reference artifact as ml train does.
    """
    from sklearn.dummy import DummyClassifier

    from ml.lifecycle.model_log import register_fitted

    settings = reg.settings
    frame = reg.trained.frame.head(2000)
    features = list(settings.model.features)
    x = feature_matrix(frame, features)
    if extra_column:
        x[extra_column] = x["tx_amount"] ** 2
    model = DummyClassifier(strategy="prior").fit(x, frame["tx_fraud"].to_numpy())
    version = register_fitted(reg.rt, model, x, alias, run_name="dummy")  # as reg.name
    if with_reference:
        ref = reference.compute_reference(x, list(x.columns))
        reg.client().log_dict(version.run_id, {"features": ref.to_dict()}, reference.ARTIFACT_FILE)
    return str(version.version)


def scores_of(reg: Reg, version: str, frame: pd.DataFrame) -> np.ndarray:
    """Scores of a registered version, computed independently of ml.score."""
    import mlflow.sklearn

    reg.client()
    model = mlflow.sklearn.load_model(f"models:/{reg.name}/{version}")
    return model.predict_proba(feature_matrix(frame, reg.settings.model.features))[:, 1]
