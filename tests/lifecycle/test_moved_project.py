"""A trained project copied or moved to another folder scores with the models in its new place
(MLflow stores absolute artifact URIs; ml.platform.mlflow_store relocates them)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from support.common import settings_for
from support.registry import _isolate, build_trained

from ml.lifecycle.promote import promote
from ml.lifecycle.score import score
from ml.platform.runtime import Runtime

pytestmark = pytest.mark.slow  # one real training


def test_a_moved_project_scores_from_its_own_folder(
    tmp_path_factory: pytest.TempPathFactory,
    feature_frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a trained project (warehouse, MLflow store, artifacts) moved to another folder:
    # the old folder is gone
    trained = build_trained(tmp_path_factory, feature_frame)
    moved = tmp_path / "moved-checkout"
    shutil.move(str(trained.root), moved)
    assert not trained.root.exists()
    _isolate(monkeypatch, moved)
    rt = Runtime.build(settings_for(moved, training={"candidates": ["logistic_regression"]}))

    # when its champion is promoted and scores there
    client = rt.registry()
    promote(rt, force=True, reason="moved checkout")
    result = score(rt)

    # then the models are read from the new folder
    assert result.rows_added == len(feature_frame)
    with sqlite3.connect(moved / "mlflow.db") as store:
        (location,) = store.execute(
            "select storage_location from model_versions where name = ? and version = ?",
            (trained.model_name, int(trained.version)),
        ).fetchone()
    assert location.startswith(moved.resolve().as_uri())
    experiment = client.get_experiment_by_name(rt.settings.mlflow.experiment)
    assert experiment.artifact_location == (moved / "mlartifacts").resolve().as_uri()
