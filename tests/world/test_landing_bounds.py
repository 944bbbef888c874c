"""The Python landing contract check (ml.world.landing_checks.validate_landing_file) follows issue 14's rules:
a zero amount is valid (a zero-amount authorisation), a timestamp before MIN_EVENT_DATE is not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.world.landing import MIN_EVENT_DATE, TRANSACTIONS_SCHEMA
from ml.world.landing_checks import validate_landing_file


def _landed(tmp_path: Path, amounts: list[float], times: list[dt.datetime]) -> Path:
    path = tmp_path / "transactions" / "tx_date=2018-04-01" / "transactions_2018-04-01.parquet"
    path.parent.mkdir(parents=True)
    table = pa.table(
        {
            "transaction_id": [1, 2],
            "tx_datetime": times,
            "customer_id": [10, 11],
            "terminal_id": [20, 21],
            "tx_amount": amounts,
        }
    ).cast(TRANSACTIONS_SCHEMA)
    pq.write_table(table, path)
    return path


def test_a_zero_amount_authorisation_is_valid(tmp_path: Path) -> None:
    times = [dt.datetime(2018, 4, 1, 10), dt.datetime(2018, 4, 1, 11)]
    assert validate_landing_file(_landed(tmp_path, [0.0, 12.5], times)) == []


def test_a_timestamp_before_the_minimum_event_date_is_reported(tmp_path: Path) -> None:
    times = [dt.datetime(1, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59)]
    problems = validate_landing_file(_landed(tmp_path, [1.0, 2.0], times))
    assert [p.split(": ", 1)[1] for p in problems] == [
        f"2 row(s) with tx_datetime before {MIN_EVENT_DATE}"
    ]
