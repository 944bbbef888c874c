"""`ml score`: the champion scores every gold transaction once, atomically, with a checked signature."""

from __future__ import annotations

import datetime as dt
import gc

import numpy as np
import pandas as pd
import pytest
from support.cli import one_line_error
from support.crash import failing_commit
from support.registry import Reg, add_dummy_version, add_trained_version, scores_of
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import score
from ml.lifecycle.loaded_model import LoadedModel, SignatureMismatchError, load_model
from ml.lifecycle.promote import promote
from ml.lifecycle.validate import validate
from ml.platform.errors import DataNotReadyError, ModelRegistryError
from ml.platform.runtime import Runtime

PREDICTIONS = "scoring.predictions"


def _predictions(reg: Reg) -> pd.DataFrame:
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        if not wh.exists(PREDICTIONS):
            return pd.DataFrame(columns=list(score.PREDICTION_COLUMNS))
        return wh.read(PREDICTIONS)


def test_score_writes_one_prediction_per_transaction(reg: Reg, champion: str, trained):
    # given a champion and the gold feature table
    frame = trained.frame

    # when `ml score` runs
    result = CliRunner().invoke(app, ["score"])

    # then every transaction has one prediction by the champion, with the contract's columns
    assert result.exit_code == 0, result.output
    assert gc.isenabled()  # the command runs without the cyclic collector and turns it back on
    predictions = _predictions(reg)
    assert list(predictions.columns) == list(score.PREDICTION_COLUMNS)
    assert len(predictions) == len(frame)
    assert predictions["transaction_id"].is_unique
    assert set(predictions["transaction_id"]) == set(frame["transaction_id"])
    assert set(predictions["model_name"]) == {reg.name} and set(predictions["model_version"]) == {
        champion
    }
    assert predictions["scored_at"].nunique() == 1
    # the scores are the model's probabilities and alerts are those at or above the threshold
    merged = frame.merge(predictions, on="transaction_id")
    np.testing.assert_allclose(merged["score"], scores_of(reg, champion, merged), rtol=1e-12)
    threshold = reg.settings.model.alert_threshold
    assert (merged["is_alert"] == (merged["score"] >= threshold)).all()
    # and the warehouse types are the documented ones
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        types = {
            column: wh.scalar(
                "select data_type from information_schema.columns where table_schema = 'scoring' "
                f"and table_name = 'predictions' and column_name = '{column}'"
            )
            for column in score.PREDICTION_COLUMNS
        }
    assert types == {
        "transaction_id": "BIGINT",
        "score": "DOUBLE",
        "is_alert": "BOOLEAN",
        "model_name": "VARCHAR",
        "model_version": "VARCHAR",
        "scored_at": "TIMESTAMP",
    }


def test_rerun_adds_nothing_and_a_date_range_scores_only_its_days(reg: Reg, champion: str, trained):
    frame = trained.frame
    days = sorted(pd.to_datetime(frame["tx_date"]).dt.date.unique())
    start, end = days[10], days[12]

    # given the champion scored three days only
    first = score.score(reg.rt, start=start, end=end)
    in_range = frame.loc[
        (pd.to_datetime(frame["tx_date"]).dt.date >= start)
        & (pd.to_datetime(frame["tx_date"]).dt.date <= end)
    ]
    assert first.rows_added == first.rows_read == len(in_range)
    assert set(_predictions(reg)["transaction_id"]) == set(in_range["transaction_id"])

    # when everything is scored, twice
    second = score.score(reg.rt)
    third = score.score(reg.rt)

    # then the second run adds exactly the other days and the third adds nothing
    assert second.rows_added == len(frame) - len(in_range)
    assert third.rows_read == 0 and third.rows_added == 0
    assert len(_predictions(reg)) == len(frame)


def test_a_new_champion_scores_everything_again(reg: Reg, champion: str, trained):
    # given the champion's predictions
    score.score(reg.rt)

    # when a new version is promoted and scoring runs again
    v2 = add_trained_version(reg)
    validate(reg.rt)
    promote(reg.rt)
    result = score.score(reg.rt)

    # then the new version has its own prediction for every transaction
    predictions = _predictions(reg)
    assert result.model_version == v2 and result.rows_added == len(trained.frame)
    assert predictions.groupby("model_version").size().to_dict() == {
        champion: len(trained.frame),
        v2: len(trained.frame),
    }


@pytest.mark.parametrize("existing", [False, True], ids=["first-run", "later-run"])
def test_a_failed_write_leaves_no_rows(
    reg: Reg, champion: str, trained, monkeypatch, existing: bool
):
    # given (maybe) some predictions already
    days = sorted(pd.to_datetime(trained.frame["tx_date"]).dt.date.unique())
    before = score.score(reg.rt, end=days[2]).rows_added if existing else 0

    # when scoring runs on a warehouse whose write fails after inserting, before committing
    with failing_commit(at=1), pytest.raises(RuntimeError, match="simulated crash"):
        score.score(reg.rt)

    # then no row of that run landed
    assert len(_predictions(reg)) == before
    # and a rerun on a healthy warehouse completes the job
    assert score.score(reg.rt).rows_added == len(trained.frame) - before


def test_signature_mismatch_is_one_line(reg: Reg):
    # given a champion whose signature wants a column the feature table lacks
    add_dummy_version(reg, extra_column="tx_amount_squared")
    promote(reg.rt, force=True, reason="test a bad signature")

    # when scoring
    result = CliRunner().invoke(app, ["score"])

    # then one line says what differs and what to do, and nothing is written
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "expects column(s) tx_amount_squared that gold.transaction_features lacks" in line
    assert "dbt build" in line and "ml train" in line
    with pytest.raises(SignatureMismatchError):
        score.score(reg.rt)
    assert len(_predictions(reg)) == 0


def test_a_non_numeric_feature_column_is_one_line(reg: Reg, champion: str):
    # given a feature table whose tx_amount column holds strings
    table = reg.settings.model.feature_table
    with Runtime.build(reg.settings).warehouse() as wh:
        wh.con.execute(f"alter table {table} alter tx_amount type varchar")

    # when scoring
    result = CliRunner().invoke(app, ["score"])

    # then one line names the column and what to do, and nothing is written
    assert result.exit_code == 1
    line = one_line_error(result)
    assert (
        f"{table} column(s) tx_amount (" in line
        and "are not numeric" in line
        and "dbt build" in line
    )
    assert len(_predictions(reg)) == 0


def test_no_champion_is_one_line(reg: Reg):
    add_trained_version(reg)  # a challenger, not promoted
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 1
    assert "has no champion yet; run ml train, ml validate, ml promote first" in one_line_error(
        result
    )
    with pytest.raises(ModelRegistryError):
        score.score(reg.rt)


def test_missing_feature_table_is_one_line(reg: Reg, champion: str, monkeypatch):
    # given a champion and a warehouse without the gold feature table
    monkeypatch.setenv("FRAUDOPS_DUCKDB_PATH", str(reg.tmp_path / "empty.duckdb"))
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 1
    assert "table gold.transaction_features does not exist" in one_line_error(result)
    with pytest.raises(DataNotReadyError):
        score.score(reg.rt)


def test_unreachable_mlflow_server_is_one_line(reg: Reg, monkeypatch):
    reg.configure(mlflow={"tracking_uri": "http://127.0.0.1:9"})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 1
    assert "MLflow tracking store http://127.0.0.1:9 is unreachable" in one_line_error(result)


def test_start_after_end_is_one_line(reg: Reg):
    result = CliRunner().invoke(app, ["score", "--start", "2018-05-02", "--end", "2018-05-01"])
    assert result.exit_code == 1
    assert "--start 2018-05-02 is after --end 2018-05-01" in one_line_error(result)


def test_predictions_frame_is_vectorised_and_typed():
    # given scores of three transactions
    model = LoadedModel("m", "7", {"x": "double"}, "sklearn", lambda x: x)
    at = dt.datetime(2018, 5, 1, 12, 0, 0)

    # when the rows are built
    rows = score.predictions_frame(np.array([3, 1, 2]), np.array([0.2, 0.5, 0.9]), model, 0.5, at)

    # then alerts are score >= threshold and every row carries the model and the instant
    assert rows["is_alert"].tolist() == [False, True, True]
    assert rows["model_version"].tolist() == ["7"] * 3
    assert rows["scored_at"].tolist() == [pd.Timestamp(at)] * 3
    assert rows["transaction_id"].dtype == "int64"


def test_chunks_on_threads_give_the_scores_of_one_call(reg: Reg, trained):
    # given the registered logistic regression and a small gradient boosting model
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml.lifecycle.data import feature_matrix

    frame = trained.frame
    features = list(reg.settings.model.features)
    boosting = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
        feature_matrix(frame, features), frame["tx_fraud"]
    )
    models = [
        load_model(reg.trained.model_name, reg.trained.version),
        LoadedModel(
            "hgb",
            "1",
            dict.fromkeys(features, "double"),
            "sklearn",
            lambda x: boosting.predict_proba(x)[:, 1],
        ),
    ]
    # when each is scored in one call and in chunks on three threads
    results = [
        (m.scores(frame, n_threads=1), m.scores(frame, n_threads=3, min_chunk_rows=1000))
        for m in models
    ]

    # then the scores are the same row for row: to the last bit for trees, to rounding for the
    # logistic regression (BLAS sums a row's terms in an order that may depend on the block)
    (lr_one, lr_chunked), (hgb_one, hgb_chunked) = results
    np.testing.assert_allclose(lr_chunked, lr_one, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(hgb_chunked, hgb_one)
    np.testing.assert_array_equal(
        hgb_one, boosting.predict_proba(feature_matrix(frame, features))[:, 1]
    )


def test_score_outside_the_gold_days_says_so(reg: Reg, champion: str) -> None:
    # given a champion and the gold feature table (2018 days)
    # when `ml score` is asked for days gold does not hold
    result = CliRunner().invoke(app, ["score", "--start", "2030-01-01"], env={"COLUMNS": "200"})
    # then it writes nothing and says why, instead of a silent table of zeros
    assert result.exit_code == 0, result.output
    assert "nothing scored: 2030-01-01.." in result.output
    assert "is outside the days of gold.transaction_features" in result.output
    assert _predictions(reg).empty
