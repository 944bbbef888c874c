"""ml.data: windows, point-in-time training labels, compromised-card exclusion, loading."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.lifecycle import data
from ml.platform.errors import DataNotReadyError
from ml.platform.runtime import Runtime
from ml.platform.settings import TrainingSettings

D = dt.date


def tx(day: str, customer: int, fraud: int = 0, reported: str | None = None) -> dict:
    return {
        "tx_date": pd.Timestamp(day),
        "tx_datetime": pd.Timestamp(day) + pd.Timedelta(hours=12),
        "customer_id": customer,
        "tx_fraud": fraud,
        "fraud_reported_at": pd.Timestamp(reported) if reported else pd.NaT,
    }


# windows of 2 training days, 2 delay days, 3 test days:
# train 04-01..04-02 | delay 04-03..04-04 | test 04-05..04-07
WINDOWS = data.make_windows(D(2018, 4, 7), train_days=2, delay_days=2, test_days=3)


def test_make_windows_lays_out_train_delay_test():
    assert data.Windows(D(2018, 4, 1), D(2018, 4, 2), D(2018, 4, 5), D(2018, 4, 7)) == WINDOWS
    assert WINDOWS.delay_days == 2
    assert WINDOWS.label_cutoff == pd.Timestamp("2018-04-05")


def test_default_windows_end_at_the_last_mature_day():
    # given a table whose last day is 05-15 and the handbook's 7/7/7 days
    windows = data.default_windows(TrainingSettings(), D(2018, 5, 15))
    # then the test window ends 7 days earlier and training ends 7 days before the test starts
    assert windows.as_dict() == {
        "train_start": "2018-04-18",
        "train_end": "2018-04-24",
        "test_start": "2018-05-02",
        "test_end": "2018-05-08",
    }


def test_default_windows_refuse_immature_labels():
    with pytest.raises(data.LabelsNotMatureError, match="not mature after 2018-05-08"):
        data.default_windows(TrainingSettings(), D(2018, 5, 15), test_end=D(2018, 5, 9))


def test_the_training_settings_set_the_windows():
    settings = TrainingSettings(test_end=D(2018, 5, 1), train_days=14, test_days=3)
    windows = data.default_windows(settings, D(2018, 5, 15))
    assert (windows.train_start, windows.test_start, windows.test_end) == (
        D(2018, 4, 8),
        D(2018, 4, 29),
        D(2018, 5, 1),
    )


def test_prequential_windows_step_back_one_test_window():
    folds = data.prequential_windows(WINDOWS, 3)
    assert [f.test_end for f in folds] == [D(2018, 4, 7), D(2018, 4, 4), D(2018, 4, 1)]
    assert folds[1] == WINDOWS.shifted(-3)


def test_training_labels_are_point_in_time():
    # given two training frauds: one reported before the test window starts, one after
    frame = pd.DataFrame(
        [
            tx("2018-04-01", 1, 1, reported="2018-04-04 10:00"),
            tx("2018-04-02", 2, 1, reported="2018-04-05 00:00"),  # exactly at the cutoff: known
            tx("2018-04-02", 3, 1, reported="2018-04-05 00:00:01"),  # one second late: unknown
            tx("2018-04-02", 4, 0),
            tx("2018-04-03", 5, 1, reported="2018-04-03 13:00"),  # delay period: not training
        ]
    )
    # when the training set is taken
    train = data.training_set(frame, WINDOWS)
    # then only frauds reported at or before the cutoff are positives; the final label is kept
    assert train["customer_id"].tolist() == [1, 2, 3, 4]
    assert train["tx_fraud"].tolist() == [1, 1, 0, 0]
    assert train["tx_fraud_final"].tolist() == [1, 1, 1, 0]


def test_test_set_drops_cards_known_compromised_before_each_day():
    # given
    frame = pd.DataFrame(
        [
            tx(
                "2018-04-01", 1, 1, reported="2018-04-06 09:00"
            ),  # training fraud: excluded from all test days
            tx(
                "2018-04-03", 2, 1, reported="2018-04-05 08:00"
            ),  # delay fraud, reported on test day 1
            tx(
                "2018-04-05", 3, 1, reported="2018-04-06 23:00"
            ),  # test fraud, reported on test day 2
            *[
                tx(day, c)
                for day in ("2018-04-05", "2018-04-06", "2018-04-07")
                for c in (1, 2, 3, 4)
            ],
        ]
    )
    # when
    test = data.evaluation_set(frame, WINDOWS)
    by_day = test.groupby(test["tx_date"].dt.day)["customer_id"].apply(sorted).to_dict()
    # then card 1 never appears; card 2 disappears the day after its report; card 3 too
    assert by_day == {5: [2, 3, 3, 4], 6: [3, 4], 7: [4]}
    assert test["tx_fraud"].sum() == 1  # card 3's fraud on day 1 is a test positive


def test_handbook_delay_rule_knows_frauds_only_after_the_delay():
    # given the same cards, with the handbook's rule (frauds known delay_days + 1 days later)
    frame = pd.DataFrame(
        [
            tx("2018-04-01", 1, 1, reported="2018-04-06 09:00"),
            tx("2018-04-03", 2, 1, reported="2018-04-03 08:00"),
            tx("2018-04-05", 3, 1, reported="2018-04-05 13:00"),
            *[
                tx(day, c)
                for day in ("2018-04-05", "2018-04-06", "2018-04-07")
                for c in (1, 2, 3, 4)
            ],
        ]
    )
    test = data.evaluation_set(frame, WINDOWS, rule="delay")
    by_day = test.groupby(test["tx_date"].dt.day)["customer_id"].apply(sorted).to_dict()
    # then card 2 (fraud on 04-03) is known from 04-06 on; card 3's test fraud is never known in time
    assert by_day == {5: [2, 3, 3, 4], 6: [3, 4], 7: [3, 4]}


def test_split_frame_rejects_training_window_without_known_fraud():
    frame = pd.DataFrame([tx("2018-04-01", 1), tx("2018-04-05", 2)])
    with pytest.raises(data.EmptyWindowError, match="no fraud reported by 2018-04-05"):
        data.split_frame(frame, WINDOWS)


def test_split_frame_rejects_empty_windows():
    with pytest.raises(data.EmptyWindowError, match="no transactions in the training window"):
        data.split_frame(pd.DataFrame([tx("2018-04-05", 2)]), WINDOWS)
    frame = pd.DataFrame([tx("2018-04-01", 1, 1, reported="2018-04-02")])
    with pytest.raises(data.EmptyWindowError, match="no transactions in the test window"):
        data.split_frame(frame, WINDOWS)


def test_load_split_reads_the_feature_table(mlflow_settings, feature_table):
    # given the generated feature table in the tmp warehouse
    with Runtime.build(mlflow_settings).warehouse(read_only=True) as wh:
        first, last = data.table_date_range(wh, mlflow_settings)
        windows = data.default_windows(mlflow_settings.training, last)
        # when the split is loaded
        split = data.load_split(wh, mlflow_settings, windows)
        test = data.load_test_set(wh, mlflow_settings, windows)
        whole = data.read_features(wh, mlflow_settings, windows.train_start, windows.test_end)
    # then it is the split of the three windows read whole (the delay read as frauds only)
    in_one_read = data.split_frame(whole, windows)
    pd.testing.assert_frame_equal(split.train, in_one_read.train)
    pd.testing.assert_frame_equal(split.test, in_one_read.test)
    pd.testing.assert_frame_equal(test, in_one_read.test)
    # then it covers the windows, keeps features as the model input, and matches load_test_set
    assert (first, last) == (min(feature_table["tx_date"]), max(feature_table["tx_date"]))
    assert split.train["tx_date"].min() == pd.Timestamp(windows.train_start)
    assert split.train["tx_date"].max() == pd.Timestamp(windows.train_end)
    assert split.test["tx_date"].min() == pd.Timestamp(windows.test_start)
    assert split.test["tx_date"].max() == pd.Timestamp(windows.test_end)
    assert split.train["tx_fraud"].sum() > 0 and split.test["tx_fraud"].sum() > 0
    assert test["transaction_id"].tolist() == split.test["transaction_id"].tolist()
    known = set(split.train.loc[split.train["tx_fraud_final"] == 1, "customer_id"])
    assert known and not known & set(split.test["customer_id"])
    matrix = data.feature_matrix(split.test, mlflow_settings.model.features)
    assert list(matrix.columns) == mlflow_settings.model.features
    assert (matrix.dtypes == "float64").all()


def test_ml_opens_duckdb_with_its_own_memory_limit(mlflow_settings, feature_table, monkeypatch):
    monkeypatch.delenv("FRAUDOPS_DUCKDB_MEMORY_LIMIT", raising=False)  # the profile's default
    # given the settings' limit for ml's connection (the profile's 3GB is dbt's)
    settings = mlflow_settings.model_copy(
        update={
            "warehouse": mlflow_settings.warehouse.model_copy(
                update={"duckdb_memory_limit": "300MB"}
            )
        }
    )
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        limit = wh.scalar("select current_setting('memory_limit')")
        threads = wh.scalar("select current_setting('threads')")
    # then DuckDB's buffer pool is bounded by it; the profile's other options still apply
    assert limit == "286.1 MiB"  # 300 MB as DuckDB reports it
    assert int(threads) == 2
    # and null means the profile's
    profile = settings.model_copy(
        update={"warehouse": settings.warehouse.model_copy(update={"duckdb_memory_limit": None})}
    )
    with Runtime.build(profile).warehouse(read_only=True) as wh:
        assert wh.scalar("select current_setting('memory_limit')") == "2.7 GiB"  # 3GB


def test_missing_feature_table_says_to_run_dbt(mlflow_settings):
    with (
        Runtime.build(mlflow_settings).warehouse() as wh,
        pytest.raises(DataNotReadyError, match="run `dbt build`"),
    ):
        data.table_date_range(wh, mlflow_settings)


def test_feature_table_without_a_contract_column_is_rejected(mlflow_settings, feature_frame):
    with Runtime.build(mlflow_settings).warehouse() as wh:
        wh.write(
            feature_frame.drop(columns=["fraud_reported_at"]),
            "gold.transaction_features",
            mode="overwrite",
        )
        with pytest.raises(DataNotReadyError, match="lacks columns fraud_reported_at"):
            data.table_date_range(wh, mlflow_settings)


def test_feature_matrix_is_one_float64_array_in_feature_order():
    # given a frame of integer, float and boolean columns, in another order than the features
    frame = pd.DataFrame(
        {"b": [1.5, 2.5, 3.5], "id": [7, 8, 9], "a": [1, 2, 3], "c": [True, False, True]},
        index=[10, 11, 12],
    )

    # when it becomes the model input
    x = data.feature_matrix(frame, ["a", "b", "c"])

    # then the columns are the features in order, float64, with the same rows and index
    assert list(x.columns) == ["a", "b", "c"] and set(x.dtypes) == {np.dtype("float64")}
    np.testing.assert_array_equal(x.to_numpy(), [[1, 1.5, 1], [2, 2.5, 0], [3, 3.5, 1]])
    assert list(x.index) == [10, 11, 12]
    # and they are one array, so scikit-learn takes it without copying it at each predict
    assert np.shares_memory(x.to_numpy(), x.to_numpy())
