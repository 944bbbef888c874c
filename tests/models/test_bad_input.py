"""Bad landing files: dbt stops on a file that is not parquet, and quarantines every bad row
with its reason while every valid row reaches silver (tests/fixtures/bad_landing.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures.bad_landing import BadLanding, build_landing, query, write_bad_landing

from ml.platform.dbt import DbtError

pytestmark = pytest.mark.slow


@dataclass
class BadBuild:
    landing: BadLanding
    workdir: Path
    error: DbtError


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory: pytest.TempPathFactory) -> BadBuild:
    """Given the fixture set with a file that is not parquet, build (fails); remove it, build again."""
    workdir = tmp_path_factory.mktemp("bad_input")
    landing = write_bad_landing(workdir / "landing", with_not_parquet=True)
    with pytest.raises(DbtError) as failed:
        build_landing(workdir, landing.root)
    landing.not_parquet_file.unlink()
    build_landing(workdir, landing.root)
    return BadBuild(landing=landing, workdir=workdir, error=failed.value)


def test_not_parquet_file_stops_the_build_with_one_line_naming_it(bad_build: BadBuild) -> None:
    # then: one line that names the file and says what to do
    message = str(bad_build.error)
    assert "\n" not in message
    assert str(bad_build.landing.not_parquet_file) in message
    assert "is not a parquet file" in message
    assert "remove it or replace it" in message


def test_bad_rows_are_quarantined_with_their_reason(bad_build: BadBuild) -> None:
    rows = query(
        bad_build.workdir, "select feed, transaction_id, reason from gold.landing_quarantine"
    )
    assert Counter(rows) == bad_build.landing.quarantined


def test_quarantine_keeps_the_landed_row_and_explains_the_reason(bad_build: BadBuild) -> None:
    rows = query(
        bad_build.workdir,
        """
        select tx_amount, tx_datetime, reason_description, _source_file, _landed_date
        from gold.landing_quarantine
        where feed = 'transactions' and transaction_id in ('102', '104')
        order by transaction_id
        """,
    )
    # the unparseable values as they landed, with the file they came from
    assert [(row[0], row[1]) for row in rows] == [
        ("12,50", "2018-04-02 13:00:00"),
        ("10.0", "1522627200"),
    ]
    assert all(row[2] and "does not parse" in row[2] for row in rows)
    assert rows[0][3].endswith("tx_date=2018-04-02/transactions_2018-04-02_text_amounts.parquet")
    assert str(rows[0][4]) == "2018-04-02"


def test_every_valid_row_reaches_silver(bad_build: BadBuild) -> None:
    transactions = query(
        bad_build.workdir, "select transaction_id from silver.int_transactions_deduplicated"
    )
    reports = query(
        bad_build.workdir,
        "select transaction_id, match_status from silver.int_fraud_reports_deduplicated",
    )
    assert sorted(t for (t,) in transactions) == sorted(bad_build.landing.silver_transactions)
    assert dict(reports) == bad_build.landing.silver_reports


def test_exact_duplicates_are_counted_once_each(bad_build: BadBuild) -> None:
    rows = query(
        bad_build.workdir, "select feed, count(*) from gold.landing_exact_duplicates group by feed"
    )
    assert dict(rows) == bad_build.landing.exact_duplicates


def test_landed_rows_are_conserved(bad_build: BadBuild) -> None:
    # bronze holds every readable landed row; each is in silver, in quarantine or a duplicate
    wd, landing = bad_build.workdir, bad_build.landing
    for feed, bronze, silver in [
        (
            "transactions",
            "bronze.stg_landing__transactions",
            "silver.int_transactions_deduplicated",
        ),
        (
            "fraud_reports",
            "bronze.stg_landing__fraud_reports",
            "silver.int_fraud_reports_deduplicated",
        ),
    ]:
        [(n_bronze,)] = query(wd, f"select count(*) from {bronze}")
        [(n_silver,)] = query(wd, f"select count(*) from {silver}")
        [(n_quarantined,)] = query(
            wd, f"select count(*) from gold.landing_quarantine where feed = '{feed}'"
        )
        assert n_bronze == landing.landed_rows[feed]
        assert n_bronze == n_silver + n_quarantined + landing.exact_duplicates[feed]


def test_extra_columns_are_not_loaded(bad_build: BadBuild) -> None:
    columns = query(
        bad_build.workdir,
        """
        select table_name, column_name from information_schema.columns
        where table_schema = 'bronze' and column_name in ('merchant_category', 'channel')
        """,
    )
    assert columns == []
