"""The pandas reference of the 15 features (bench/pandas_features.py) on hand-made rows.

The reference is what the SQL model is checked against (tests/test_features_sql_vs_pandas.py and
bench/bench_foundation.py), so it gets its own boundary cases — the same ones as the dbt unit
tests of transaction_features — and its comparison helper must be able to fail.
"""

from __future__ import annotations

from types import ModuleType

import pandas as pd
import pytest
from support.features import load_reference

DAY = 86_400
T0 = pd.Timestamp("2018-04-10 12:00:00")


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return load_reference()


def transactions(*rows: tuple[int, int, int, int, float]) -> pd.DataFrame:
    """Rows of (transaction_id, seconds from T0, customer_id, terminal_id, tx_amount)."""
    frame = pd.DataFrame(
        rows, columns=["transaction_id", "offset_s", "customer_id", "terminal_id", "tx_amount"]
    )
    frame["tx_epoch_s"] = int(T0.timestamp()) + frame["offset_s"]
    frame["tx_datetime"] = pd.to_datetime(frame["tx_epoch_s"], unit="s")
    return frame


def reports(*rows: tuple[int, int]) -> pd.DataFrame:
    """Rows of (transaction_id, report time in seconds from T0)."""
    frame = pd.DataFrame(rows, columns=["transaction_id", "offset_s"])
    frame["reported_at"] = T0 + pd.to_timedelta(frame["offset_s"], unit="s")
    return frame.astype({"transaction_id": "int64"})


def row(features: pd.DataFrame, transaction_id: int) -> pd.Series:
    return features.set_index("transaction_id").loc[transaction_id]


def test_customer_windows_exclude_exactly_n_days_earlier(reference: ModuleType) -> None:
    # given a card's transactions exactly n days and n days minus a second before t
    given = transactions(
        (1, -30 * DAY, 1, 1, 1.0),
        (2, -30 * DAY + 1, 1, 1, 2.0),
        (3, -7 * DAY, 1, 1, 4.0),
        (4, -7 * DAY + 1, 1, 1, 8.0),
        (5, -DAY, 1, 1, 16.0),
        (6, -DAY + 1, 1, 1, 32.0),
        (7, 0, 1, 1, 64.0),
    )
    # when
    features = reference.compute_features(given, reports())
    # then the one exactly n days earlier is out, the next second in
    at_t = row(features, 7)
    assert at_t["customer_id_nb_tx_1day_window"] == 2
    assert at_t["customer_id_avg_amount_1day_window"] == 48.0
    assert at_t["customer_id_nb_tx_7day_window"] == 4
    assert at_t["customer_id_avg_amount_7day_window"] == 30.0
    assert at_t["customer_id_nb_tx_30day_window"] == 6
    assert at_t["customer_id_avg_amount_30day_window"] == 21.0


def test_same_second_transactions_are_ordered_by_id(reference: ModuleType) -> None:
    # given three transactions of card 1 in one second, listed out of order
    given = transactions((12, 0, 1, 1, 4.0), (10, 0, 1, 1, 1.0), (11, 0, 1, 1, 2.0))
    # when
    features = reference.compute_features(given, reports())
    # then each sees only the lower ids
    assert features["customer_id_nb_tx_1day_window"].tolist() == [1, 2, 3]
    assert features["customer_id_avg_amount_1day_window"].tolist() == [1.0, 1.5, 7 / 3]


def test_terminal_windows_are_delayed_and_point_in_time(reference: ModuleType) -> None:
    # given frauds on terminal 7 in the 7-day window of t: one reported before t, one exactly at
    # t, one a second after t (8 days after it happened); plus a genuine transaction
    given = transactions(
        (1, -10 * DAY, 1, 7, 1.0),
        (2, -9 * DAY, 2, 7, 1.0),
        (3, -8 * DAY, 3, 7, 1.0),
        (4, -8 * DAY - 3600, 4, 7, 1.0),
        (5, 0, 5, 7, 1.0),
        (6, 1, 6, 7, 1.0),
    )
    given_reports = reports((1, -2 * DAY), (2, 0), (3, 1), (99, -DAY))
    # when
    features = reference.compute_features(given, given_reports)
    # then at t the late report does not count, one second later it does
    at_t, after = row(features, 5), row(features, 6)
    assert at_t["terminal_id_nb_tx_7day_window"] == 4
    assert at_t["terminal_id_risk_7day_window"] == 0.5
    assert after["terminal_id_risk_7day_window"] == 0.75
    # and the 1-day window (t - 8 days, t - 7 days] is empty: risk 0
    assert at_t["terminal_id_nb_tx_1day_window"] == 0
    assert at_t["terminal_id_risk_1day_window"] == 0.0
    assert features["tx_fraud"].tolist() == [1, 1, 1, 0, 0, 0]


def test_calendar_flags(reference: ModuleType) -> None:
    # given Saturday 06:59:59, Sunday 23:59:59, Monday 00:00:00, Friday 07:00:00
    offsets = [
        pd.Timestamp(s) - T0
        for s in (
            "2018-04-07 06:59:59",
            "2018-04-08 23:59:59",
            "2018-04-09 00:00:00",
            "2018-04-06 07:00:00",
        )
    ]
    given = transactions(
        *((i + 1, int(o.total_seconds()), i + 1, i + 1, 1.0) for i, o in enumerate(offsets))
    )
    # when
    features = reference.compute_features(given, reports())
    # then
    assert features["tx_during_weekend"].tolist() == [1, 1, 0, 0]
    assert features["tx_during_night"].tolist() == [1, 0, 1, 0]


def test_compare_accepts_rounding_and_flags_real_differences(reference: ModuleType) -> None:
    # given a reference feature table
    given = transactions((1, 0, 1, 1, 10.0), (2, 60, 1, 1, 20.0), (3, 120, 2, 1, 30.0))
    expected = reference.compute_features(given, reports())
    # when the other side differs by float rounding only, it is equal
    rounded = expected.copy()
    rounded["customer_id_avg_amount_1day_window"] += 1e-12
    assert reference.compare(rounded, expected).equal
    # when a count, an average or a row differs, it is not
    miscounted = expected.copy()
    miscounted.loc[0, "customer_id_nb_tx_7day_window"] += 1
    shifted = expected.copy()
    shifted.loc[1, "customer_id_avg_amount_30day_window"] += 1e-6
    missing = expected.iloc[1:]
    assert reference.compare(miscounted, expected).mismatches == {
        "customer_id_nb_tx_7day_window": 1
    }
    assert reference.compare(shifted, expected).mismatches == {
        "customer_id_avg_amount_30day_window": 1
    }
    assert reference.compare(missing, expected).mismatches == {"transaction_id": 1}


def test_extra_customer_features(reference: ModuleType) -> None:
    # given card 1: 100 exactly 30 days before t, 2 one second later, 4 at t; card 2 alone;
    # card 4: two transactions in the same second (ids 40 < 41)
    given = transactions(
        (1, -30 * DAY, 1, 1, 100.0),
        (2, -30 * DAY + 1, 1, 2, 2.0),
        (3, 0, 1, 3, 4.0),
        (20, 0, 2, 4, 7.5),
        (41, 0, 4, 5, 6.0),
        (40, 0, 4, 5, 2.0),
    )
    # when
    features = reference.compute_features(given, reports()).set_index("transaction_id")
    # then the window (t - 30 days, t] holds 2 and 3: mean 3, std 1
    at_t = features.loc[3]
    assert at_t["customer_id_amount_ratio_30day_window"] == 4 / 3
    assert at_t["customer_id_amount_ratio_1day_window"] == 1.0
    assert at_t["customer_id_amount_zscore_30day_window"] == 1.0
    assert at_t["customer_id_max_amount_30day_window"] == 4.0
    # and 2 sees 1 a second earlier: mean 51, std 49
    assert features.loc[2, "customer_id_amount_zscore_30day_window"] == -1.0
    assert features.loc[2, "customer_id_max_amount_30day_window"] == 100.0
    # and a lone transaction has std 0, hence z-score 0
    assert features.loc[20, "customer_id_amount_zscore_30day_window"] == 0.0
    # and the same-second transaction with the lower id does not see the other one
    assert features.loc[40, "customer_id_max_amount_30day_window"] == 2.0
    assert features.loc[40, "customer_id_amount_zscore_30day_window"] == 0.0
    assert features.loc[41, "customer_id_amount_zscore_30day_window"] == 1.0
    assert features.loc[41, "customer_id_amount_ratio_7day_window"] == 1.5


def test_reported_frauds_counts_other_frauds_known_at_t(reference: ModuleType) -> None:
    # given frauds on terminal 7: 1 exactly 7 days before t, 2 a second later (reported the day
    # before t), 3 (reported exactly at t), 4 (reported a second after t), a genuine 5, and
    # 9, 10, 11 at t, all reported at t
    given = transactions(
        (1, -7 * DAY, 1, 7, 1.0),
        (2, -7 * DAY + 1, 2, 7, 1.0),
        (3, -DAY, 3, 7, 1.0),
        (4, -2 * DAY, 4, 7, 1.0),
        (5, -3 * DAY, 5, 7, 1.0),
        (9, 0, 9, 7, 1.0),
        (10, 0, 10, 7, 1.0),
        (11, 0, 11, 7, 1.0),
        (20, 0, 20, 8, 1.0),
    )
    given_reports = reports((1, -6 * DAY), (2, -DAY), (3, 0), (4, 1), (9, 0), (10, 0), (11, 0))
    # when
    features = reference.compute_features(given, given_reports).set_index("transaction_id")
    counted = features["terminal_id_reported_frauds_7day_window"]
    # then 10 counts 2, 3 and 9: not 1 (outside), 4 (reported later), itself, nor 11 (higher id)
    assert counted[10] == 3
    assert counted[11] == 4
    assert counted[9] == 2
    assert counted[3] == 2  # 1, and 2 reported exactly at its time
    assert counted[20] == 0  # another terminal
