"""`ml train`: candidates logged to MLflow, the best registered as challenger, reference written."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import average_precision_score, roc_auc_score
from support.cli import one_line_error
from support.common import copy_mlflow_db, make_feature_frame, mlflow_env, write_feature_table
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import data
from ml.lifecycle.train import train
from ml.platform.runtime import Runtime
from ml.platform.settings import EXTRA_FEATURES, FEATURES, load_settings

MODEL = "fraud_detector"
DBT_INVOCATION = "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
# the default model.features: the handbook's 15 and our 6 extra ones
MODEL_FEATURES = [*FEATURES, *EXTRA_FEATURES]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, feature_frame: pd.DataFrame, mlflow_db_template: Path
):
    """One `ml train` through the CLI on the generated table, with a dbt run_results.json."""
    tmp = tmp_path_factory.mktemp("train")
    copy_mlflow_db(mlflow_db_template, tmp)
    with pytest.MonkeyPatch.context() as mp:
        env = {
            **mlflow_env(tmp),
            "FRAUDOPS_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
            "FRAUDOPS_SETTINGS_FILE": str(tmp / "none.yaml"),
            "DBT_TARGET_PATH": str(tmp / "target"),
        }
        for key, value in env.items():
            mp.setenv(key, value)
        (tmp / "target").mkdir()
        (tmp / "target" / "run_results.json").write_text(
            json.dumps(
                {
                    "metadata": {
                        "invocation_id": DBT_INVOCATION,
                        "generated_at": "2026-01-01T00:00:00Z",
                    },
                    "results": [
                        {"unique_id": "model.fraudops.transaction_features", "status": "success"}
                    ],
                }
            )
        )
        settings = load_settings()
        write_feature_table(settings, feature_frame)
        result = CliRunner().invoke(app, ["train"])
        yield settings, result


@pytest.fixture(scope="module")
def client(trained) -> MlflowClient:
    settings, _ = trained
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_registry_uri(settings.mlflow.tracking_uri)
    return MlflowClient()


def test_cli_prints_the_candidates_and_the_new_version(trained):
    _, result = trained
    assert result.exit_code == 0, result.output
    assert "logistic_regression" in result.output and "hist_gradient_boosting" in result.output
    assert f"registered {MODEL} version 1" in result.output
    assert "alias challenger" in result.output


def test_best_candidate_by_average_precision_is_the_challenger(trained, client):
    version = client.get_model_version_by_alias(MODEL, "challenger")
    assert str(version.version) == "1"
    parent = client.get_run(client.get_run(version.run_id).data.tags["mlflow.parentRunId"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    ap = {run.data.tags["candidate"]: run.data.metrics["average_precision"] for run in children}
    assert set(ap) == {"logistic_regression", "hist_gradient_boosting"}
    assert version.tags["candidate"] == max(ap, key=ap.get)
    assert parent.data.tags["model_version"] == "1"
    assert float(version.tags["test_average_precision"]) == pytest.approx(
        max(ap.values()), rel=1e-5
    )


def test_version_is_tagged_with_windows_and_lineage(trained, client):
    tags = client.get_model_version_by_alias(MODEL, "challenger").tags
    assert tags["train_start"] == "2018-04-18" and tags["test_end"] == "2018-05-08"
    assert tags["dbt_invocation_id"] == DBT_INVOCATION
    assert tags["dbt_built_feature_table"] == "true"
    assert len(tags["git_commit"]) == 40


def test_model_has_signature_input_example_and_predicts_probabilities(trained, client):
    version = client.get_model_version_by_alias(MODEL, "challenger")
    info = mlflow.models.get_model_info(f"models:/{MODEL}@challenger")
    assert [spec.name for spec in info.signature.inputs] == MODEL_FEATURES
    assert {spec.type.name for spec in info.signature.inputs} == {"double"}
    assert info.saved_input_example_info is not None
    model = mlflow.sklearn.load_model(f"models:/{MODEL}/{version.version}")
    example = pd.DataFrame(np.zeros((2, len(MODEL_FEATURES))), columns=MODEL_FEATURES)
    proba = model.predict_proba(example)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1)
    # the outputs are named (not an unnamed (-1, 2) tensor): the last is the fraud probability
    assert info.signature.outputs.input_names() == ["genuine_probability", "fraud_probability"]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version.version}")
    assert np.allclose(np.asarray(pyfunc.predict(example))[:, 1], proba[:, 1])


def test_training_dataset_is_logged_as_input(trained, client):
    version = client.get_model_version_by_alias(MODEL, "challenger")
    inputs = client.get_run(version.run_id).inputs.dataset_inputs
    contexts = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i for i in inputs}
    training = contexts["training"]
    assert training.dataset.name == "gold.transaction_features"
    assert training.dataset.digest
    tags = {t.key: t.value for t in training.tags}
    assert (
        tags["start"] == "2018-04-18" and tags["end"] == "2018-04-24" and int(tags["rows"]) > 1000
    )
    assert json.loads(training.dataset.source)["uri"].endswith("warehouse.duckdb")
    assert "testing" in contexts


def test_candidate_runs_hold_plots_importances_and_reference(trained, client):
    version = client.get_model_version_by_alias(MODEL, "challenger")
    paths = {a.path for a in client.list_artifacts(version.run_id)}
    paths |= {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert {
        "plots/pr_curve.png",
        "plots/roc_curve.png",
        "plots/confusion_matrix.png",
        "plots/feature_importance.png",
        "feature_importance.csv",
        "feature_reference.json",
    } <= paths
    importance = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path="feature_importance.csv"
        )
    )
    assert sorted(importance["feature"]) == sorted(MODEL_FEATURES)


def test_logged_metrics_are_sklearns_on_the_test_set(trained, client):
    # given the registered model and the test set of its windows
    settings, _ = trained
    version = client.get_model_version_by_alias(MODEL, "challenger")
    windows = data.Windows(
        *(
            pd.Timestamp(version.tags[k]).date()
            for k in ("train_start", "train_end", "test_start", "test_end")
        )
    )
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        test = data.load_test_set(wh, settings, windows)
    # when scored again
    model = mlflow.sklearn.load_model(f"models:/{MODEL}@challenger")
    scores = model.predict_proba(data.feature_matrix(test, MODEL_FEATURES))[:, 1]
    # then the run's metrics are sklearn's
    logged = client.get_run(version.run_id).data.metrics
    assert logged["average_precision"] == pytest.approx(
        average_precision_score(test["tx_fraud"], scores)
    )
    assert logged["roc_auc"] == pytest.approx(roc_auc_score(test["tx_fraud"], scores))
    assert logged["transactions"] == len(test)


def test_reference_distribution_is_written_for_the_version(trained):
    settings, _ = trained
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        bins = wh.read("scoring.feature_reference")
        sample = wh.read("scoring.feature_reference_sample")
    assert set(bins["model_version"]) >= {"1"}
    version_1 = bins.loc[bins["model_version"] == "1"]
    assert sorted(version_1["feature"].unique()) == sorted(MODEL_FEATURES)
    assert version_1.groupby("feature")["expected_fraction"].sum().to_numpy() == pytest.approx(1.0)
    assert sample.loc[sample["model_version"] == "1"].groupby("feature").size().eq(1000).all()


def test_second_training_moves_the_alias_and_returns_a_result(trained, client):
    # given the trained module environment (version 1 is the challenger)
    settings, _ = trained
    # when a second model is trained directly with one candidate on an earlier test window
    rt = Runtime.build(settings).with_settings(
        training={
            "candidates": ["logistic_regression"],
            "test_end": pd.Timestamp("2018-05-06").date(),
        }
    )
    result = train(rt)
    # then it becomes version 2 with the alias, and its reference is added next to version 1's
    assert (result.model_version, result.best_candidate) == ("2", "logistic_regression")
    assert result.windows.test_end.isoformat() == "2018-05-06"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "2"
    assert set(result.best.metrics) >= {
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
        "alerts_per_day",
    }
    assert (
        result.reference_rows[0] > len(MODEL_FEATURES)
        and result.reference_rows[1] == len(MODEL_FEATURES) * 1000
    )
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        versions = set(wh.read("scoring.feature_reference")["model_version"])
    assert versions == {"1", "2"}


# --- errors: one line, exit code 1 ----------------------------------------------------------------


def test_missing_feature_table_is_one_line(mlflow_settings):
    with Runtime.build(mlflow_settings).warehouse() as wh:
        wh.write(pd.DataFrame({"x": [1]}), "gold.something_else")
    line = one_line_error(CliRunner().invoke(app, ["train"]))
    assert "gold.transaction_features does not exist" in line and "dbt build" in line


def test_immature_test_window_is_one_line(feature_table):
    line = one_line_error(CliRunner().invoke(app, ["train", "--test-end", "2018-05-12"]))
    assert "labels are not mature after 2018-05-08" in line


def test_training_window_before_the_data_is_one_line(feature_table):
    line = one_line_error(CliRunner().invoke(app, ["train", "--test-end", "2018-04-12"]))
    assert "before the first transaction day 2018-04-01" in line


def test_unknown_candidate_is_one_line(feature_table):
    line = one_line_error(CliRunner().invoke(app, ["train", "--candidate", "xgboost"]))
    assert "unknown candidate 'xgboost'" in line


def test_unreachable_mlflow_store_is_one_line(feature_table, monkeypatch, tmp_path: Path):
    # given a tracking store under a path that is a file, not a folder
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv(
        "FRAUDOPS__MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path}/not-a-dir/mlflow.db"
    )
    line = one_line_error(CliRunner().invoke(app, ["train"]))
    assert "MLflow store" in line


def test_unreachable_mlflow_server_is_one_line(feature_table, monkeypatch):
    monkeypatch.setenv("FRAUDOPS__MLFLOW__TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    line = one_line_error(CliRunner().invoke(app, ["train"]))
    assert "MLflow tracking store http://127.0.0.1:9 is unreachable" in line


def test_empty_warehouse_table_is_one_line(mlflow_settings):
    write_feature_table(mlflow_settings, make_feature_frame(days=2).iloc[:0])
    line = one_line_error(CliRunner().invoke(app, ["train"]))
    assert "is empty" in line
