"""MLflow locations derived from the dbt target (ml.platform.mlflow_store): Databricks tracking, Unity
Catalog registry and a three-part model name on ``databricks``; local settings elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.platform.errors import ConfigError
from ml.platform.mlflow_store import mlflow_locations, uc_model_name
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.tables import SCORING_SCHEMA
from ml.platform.warehouse import Target

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FRAUDOPS_SETTINGS_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.delenv("FRAUDOPS_TARGET", raising=False)
    for name in ("DATABRICKS_HOST", "DATABRICKS_HTTP_PATH", "DATABRICKS_TOKEN", "FRAUDOPS_CATALOG"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)})


def test_databricks_target_tracks_to_the_workspace_and_registers_in_unity_catalog(
    settings, monkeypatch
):
    # given the databricks target of profiles.yml, with the prod catalog
    monkeypatch.setenv("FRAUDOPS_CATALOG", "fraudops_prod")
    # when the settings are specialised for it
    derived = Runtime.build(settings, "databricks").settings
    # then MLflow goes to Databricks, the model is catalog.schema.name, the experiment a workspace path
    assert derived.mlflow.tracking_uri == "databricks"
    assert derived.mlflow.registry_uri == "databricks-uc"
    assert derived.model.name == "fraudops_prod.scoring.fraud_detector"
    assert derived.mlflow.experiment == "/Shared/fraudops"
    assert derived.mlflow.artifact_location is None
    assert derived.dbt.target == "databricks"
    # and the loaded settings themselves are untouched
    assert settings.mlflow.tracking_uri.startswith("sqlite:///")
    assert settings.model.name == "fraud_detector"


def test_local_targets_keep_the_local_mlflow_store(settings):
    for target in ("local", "spark"):
        derived = Runtime.build(settings, target).settings
        assert derived.mlflow == settings.mlflow
        assert derived.model.name == "fraud_detector"
        assert derived.dbt.target == target


def test_explicit_remote_uris_and_workspace_experiment_are_kept(tmp_path):
    # given settings that already name a Databricks profile and a workspace experiment
    settings = load_settings(
        mlflow={
            "tracking_uri": "databricks://prod-profile",
            "registry_uri": "databricks-uc://prod-profile",
            "experiment": "/Users/ops@example.com/fraudops",
        },
        model={"name": "main.ml.fraud_detector"},
    )
    target = Target("databricks", "databricks", {"catalog": "fraudops_dev"}, tmp_path)
    # when the locations are derived
    locations = mlflow_locations(settings, target)
    # then nothing explicit is overridden
    assert locations.tracking_uri == "databricks://prod-profile"
    assert locations.registry_uri == "databricks-uc://prod-profile"
    assert locations.experiment == "/Users/ops@example.com/fraudops"
    assert locations.model_name == "main.ml.fraud_detector"


def test_model_lives_in_the_schema_of_the_scoring_tables(tmp_path):
    settings = load_settings()
    target = Target("databricks", "databricks", {"catalog": "cat"}, tmp_path)
    assert mlflow_locations(settings, target).model_name == f"cat.{SCORING_SCHEMA}.fraud_detector"


@pytest.mark.parametrize(
    ("catalog", "schema", "name", "message"),
    [
        ("cat", "scoring", "ml.fraud_detector", "bare name or catalog.schema.name"),
        ("", "scoring", "m", "catalog"),
    ],
)
def test_unusable_model_names_are_one_line_errors(catalog, schema, name, message):
    with pytest.raises(ConfigError, match=message):
        uc_model_name(catalog, schema, name)


@pytest.mark.parametrize(
    ("command", "module", "function", "extra"),
    [
        ("validate", "ml.lifecycle.validate", "validate", []),
        ("promote", "ml.lifecycle.promote", "promote", []),
        ("rollback", "ml.lifecycle.promote", "rollback", ["--reason", "test"]),
        ("score", "ml.lifecycle.score", "score", []),
        ("report", "ml.operations.report", "write_report", []),
        ("replay", "ml.operations.replay", "replay", []),
        ("train", "ml.lifecycle.train", "train", []),
    ],
)
def test_every_command_with_target_uses_the_targets_mlflow(
    settings, monkeypatch, command, module, function, extra
):
    # given the databricks target, and the command's work function replaced by one that reports
    # the settings it was handed (as a one-line user error, which the CLI prints)
    import importlib

    from typer.testing import CliRunner

    from ml.cli import app
    from ml.platform.errors import FraudopsError

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("FRAUDOPS_CATALOG", "fraudops_prod")

    def spy(rt, *args, **kwargs):
        raise FraudopsError(f"got {rt.settings.mlflow.registry_uri} {rt.settings.model.name}")

    monkeypatch.setattr(importlib.import_module(module), function, spy)
    # when the command runs with --target databricks
    result = CliRunner().invoke(app, [command, "--target", "databricks", *extra])
    # then it tracks and registers where the target says, not in the local store
    assert "got databricks-uc fraudops_prod.scoring.fraud_detector" in " ".join(
        result.output.split()
    )


def test_quiet_mlflow_stays_quiet_after_an_inner_block() -> None:
    # given ml run's block around the whole loop, and an inner one (validate, model loading)
    from mlflow.utils import logging_utils

    from ml.platform.mlflow_store import quiet_mlflow

    with quiet_mlflow():
        with quiet_mlflow():
            pass
        # then MLflow's event lines ("Successfully registered model ...") stay off
        assert not logging_utils.MLFLOW_LOGGING_STREAM.enabled
    assert logging_utils.MLFLOW_LOGGING_STREAM.enabled
