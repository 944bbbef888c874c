"""`ml evaluate --protocol prequential`: folds, mean ± std per candidate, one MLflow run."""

from __future__ import annotations

import datetime as dt

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from support.cli import one_line_error
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import data
from ml.lifecycle.evaluate import FOLD_TABLE, prequential
from ml.lifecycle.train import evaluate_candidate, fit_candidate
from ml.platform.runtime import Runtime


def _runtime(settings, **training):
    """The runtime of ``settings`` with ``training`` overrides (what the CLI options become)."""
    return Runtime.build(settings).with_settings(training=training)


def test_prequential_folds_step_back_one_week_and_summarise(mlflow_settings, feature_table):
    # given the generated table (last day 05-15, so the last mature test window ends 05-08)
    # when two prequential folds are evaluated
    result = prequential(_runtime(mlflow_settings, prequential_folds=2), track=False)
    # then fold 0 is the latest mature window and fold 1 is one week earlier
    assert [w.test_end for w in result.windows] == [dt.date(2018, 5, 8), dt.date(2018, 5, 1)]
    assert [w.train_start for w in result.windows] == [dt.date(2018, 4, 18), dt.date(2018, 4, 11)]
    folds = result.folds
    assert len(folds) == 4 and set(folds["candidate"]) == {
        "logistic_regression",
        "hist_gradient_boosting",
    }
    # and the summary is the mean and population std over folds
    for candidate, rows in folds.groupby("candidate"):
        for metric in ("roc_auc", "average_precision", "card_precision_at_100"):
            mean, std = result.mean_std(candidate, metric)
            assert mean == pytest.approx(rows[metric].mean())
            assert std == pytest.approx(rows[metric].std(ddof=0))
            assert 0 <= mean <= 1


def test_prequential_fold_equals_training_on_that_split(mlflow_settings, feature_table):
    # given the result of one fold
    result = prequential(
        _runtime(mlflow_settings, prequential_folds=1, candidates=["logistic_regression"]),
        track=False,
    )
    fold = result.folds.iloc[0]
    # when the same candidate is trained on the same windows by hand
    with Runtime.build(mlflow_settings).warehouse(read_only=True) as wh:
        split = data.load_split(wh, mlflow_settings, result.windows[0])
    pipeline = fit_candidate("logistic_regression", split.train, mlflow_settings)
    _, metrics = evaluate_candidate(pipeline, split.test, mlflow_settings)
    # then the metrics are identical
    assert fold["test_rows"] == len(split.test)
    assert fold["average_precision"] == pytest.approx(metrics["average_precision"])
    assert fold["card_precision_at_100"] == pytest.approx(metrics["card_precision_at_100"])
    assert result.run_id is None


def test_prequential_is_logged_as_one_run_with_fold_table(mlflow_settings, feature_table):
    result = prequential(
        _runtime(mlflow_settings, prequential_folds=2, candidates=["logistic_regression"])
    )
    client = MlflowClient(tracking_uri=mlflow_settings.mlflow.tracking_uri)
    run = client.get_run(result.run_id)
    mean, std = result.mean_std("logistic_regression", "average_precision")
    assert run.data.metrics["logistic_regression.average_precision_mean"] == pytest.approx(mean)
    assert run.data.metrics["logistic_regression.average_precision_std"] == pytest.approx(std)
    assert run.data.params["folds"] == "2" and run.data.tags["protocol"] == "prequential"
    table = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=result.run_id,
            artifact_path=FOLD_TABLE,
            tracking_uri=mlflow_settings.mlflow.tracking_uri,
        )
    )
    assert table["fold"].tolist() == [0, 1]
    assert table["test_end"].tolist() == ["2018-05-08", "2018-05-01"]


def test_cli_prints_mean_and_std_per_candidate(feature_table):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--protocol",
            "prequential",
            "--folds",
            "2",
            "--candidate",
            "logistic_regression",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 folds" in result.output and "logistic_regression" in result.output
    assert result.output.count("±") == 3
    assert "MLflow run" in result.output


def test_too_many_folds_for_the_history_is_one_line(feature_table):
    # 4 folds need training data from 03-28, the table starts on 04-01
    line = one_line_error(CliRunner().invoke(app, ["evaluate"]))
    assert "need data from 2018-03-28" in line and "fewer --folds" in line


def test_unknown_protocol_is_one_line(feature_table):
    line = one_line_error(CliRunner().invoke(app, ["evaluate", "--protocol", "kfold"]))
    assert "unknown protocol 'kfold'" in line
