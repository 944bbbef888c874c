"""Issue 14, "lose nothing, corrupt nothing": hostile landing zones (tests/fixtures/hostile_landing.py)
must either land every row correctly or stop the build with one line naming the path and what to
do, never build green while losing, doubling or shifting rows (docs/data-contract.md)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from fixtures.bad_landing import (
    D1,
    D2,
    PROJECT_DIR,
    at,
    query,
    report,
    reports_table,
    transactions_table,
    tx,
    write_file,
)
from fixtures.hostile_landing import (
    build,
    land_corrupt_pages,
    land_day1,
    land_duplicate_column,
    land_non_utf8_name,
    zoned_transactions,
)

from ml.platform.dbt import DbtError

pytestmark = pytest.mark.slow

D8 = D1 + dt.timedelta(days=7)
BRONZE_TX = "select count(*) from bronze.stg_landing__transactions"
BRONZE_REPORTS = "select count(*) from bronze.stg_landing__fraud_reports"


def _count(workdir: Path, sql: str) -> int:
    [(n,)] = query(workdir, sql)
    return n


def _one_line_error(error: pytest.ExceptionInfo[DbtError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---- 1. zero-amount authorisations ---------------------------------------------------------


def test_zero_amount_authorisation_reaches_gold_and_counts_in_its_windows(tmp_path: Path) -> None:
    # given a zero-amount authorisation, then a purchase on the same card and terminal, and a
    # week later another card at that terminal
    root = tmp_path / "landing"
    day1 = [
        tx(1, at(D1, 8), customer_id=1, terminal_id=11, tx_amount=0.0),
        tx(2, at(D1, 9), customer_id=1, terminal_id=11, tx_amount=10.0),
    ]
    write_file(
        root, "transactions", f"tx_date={D1}", "transactions_2018-04-01", transactions_table(day1)
    )
    day8 = [tx(3, at(D8, 10), customer_id=2, terminal_id=11, tx_amount=5.0)]
    write_file(
        root, "transactions", f"tx_date={D8}", "transactions_2018-04-08", transactions_table(day8)
    )

    # when the warehouse is built up to the gold feature table
    build(tmp_path, root, select=["+transaction_features"])

    # then the authorisation is a gold row and counts in its card's and its terminal's windows
    rows = query(
        tmp_path,
        """
        select transaction_id, tx_amount, customer_id_nb_tx_1day_window,
               customer_id_avg_amount_1day_window, terminal_id_nb_tx_1day_window
        from gold.transaction_features order by transaction_id
        """,
    )
    assert rows[0][:2] == (1, 0.0)
    assert rows[1][2:4] == (2, 5.0)  # the card's day: 0.0 and 10.0
    assert rows[2][4] == 2  # the terminal's day 1 (a week back): both transactions
    quarantined = (
        "select count(*) from silver.int_transactions_validated where quarantine_reason is not null"
    )
    assert _count(tmp_path, quarantined) == 0


# ---- 2. time zones ---------------------------------------------------------------------------


def test_zoned_timestamps_land_in_utc_whatever_the_host_zone(tmp_path: Path) -> None:
    # given UTC-zoned parquet timestamps and text timestamps with and without an offset
    root = tmp_path / "landing"
    write_file(
        root, "transactions", f"tx_date={D1}", "transactions_2018-04-01", zoned_transactions()
    )
    text = transactions_table(
        [tx(3, "2018-04-01 08:00:00+05:00"), tx(4, "2018-04-01 08:00:00")],
        types={"tx_datetime": pa.string()},
    )
    write_file(root, "transactions", f"tx_date={D1}", "transactions_2018-04-01_text", text)

    # when dbt runs on a host whose zone is not UTC
    build(tmp_path, root, env={"TZ": "Asia/Kolkata"})

    # then every value is its UTC wall clock (naive text means UTC)
    rows = query(
        tmp_path,
        "select transaction_id, tx_datetime from silver.int_transactions_deduplicated order by 1",
    )
    assert rows == [
        (1, dt.datetime(2018, 4, 1, 8, 0)),
        (2, dt.datetime(2018, 4, 1, 23, 30)),
        (3, dt.datetime(2018, 4, 1, 3, 0)),
        (4, dt.datetime(2018, 4, 1, 8, 0)),
    ]


# ---- 3. empty or missing landing roots, full refresh -----------------------------------------


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_missing_or_empty_landing_root_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "landing"
    if kind == "empty":
        (root / "transactions").mkdir(parents=True)
    with pytest.raises(DbtError) as failed:
        build(tmp_path, root)
    message = _one_line_error(failed)
    assert f"landing root {root} holds no landing file" in message


def test_a_full_refresh_never_replaces_a_loaded_table_with_nothing(tmp_path: Path) -> None:
    # given a warehouse built from a transaction and a fraud-report file
    root = tmp_path / "landing"
    land_day1(root)
    write_file(
        root,
        "fraud_reports",
        f"report_date={D2}",
        "fraud_reports_2018-04-02",
        reports_table([report(1, at(D2, 1))]),
    )
    build(tmp_path, root)

    # when a full refresh reads a mistyped root: refused, naming the root
    with pytest.raises(DbtError) as mistyped:
        build(tmp_path, tmp_path / "landnig", "--full-refresh")
    assert f"landing root {tmp_path / 'landnig'} holds no landing file" in _one_line_error(mistyped)

    # when the fraud-report feed's folder has gone: refused, naming the folder
    shutil.rmtree(root / "fraud_reports")
    with pytest.raises(DbtError) as emptied:
        build(tmp_path, root, "--full-refresh")
    message = _one_line_error(emptied)
    assert f"{root / 'fraud_reports'}" in message and "allow_empty_refresh" in message
    assert (_count(tmp_path, BRONZE_TX), _count(tmp_path, BRONZE_REPORTS)) == (3, 1)

    # unless it is explicitly allowed
    build(tmp_path, root, "--full-refresh", "--vars", "{allow_empty_refresh: true}")
    assert (_count(tmp_path, BRONZE_TX), _count(tmp_path, BRONZE_REPORTS)) == (3, 0)


# ---- 4. glob characters in paths ---------------------------------------------------------------


def test_a_file_name_with_a_star_is_read_once(tmp_path: Path) -> None:
    # given day 1 loaded, then a second delivery whose name holds `*` (it matches the first file)
    root = tmp_path / "landing"
    land_day1(root)
    build(tmp_path, root)
    land_day1(root, range(4, 6), name="transactions_2018-04-01*")

    # when it is loaded (build: with the conservation test)
    build(tmp_path, root)

    # then bronze holds each landed row once
    assert _count(tmp_path, BRONZE_TX) == 5
    assert _count(tmp_path, "select count(*) from silver.int_transactions_deduplicated") == 5


def test_a_landing_root_with_brackets_is_a_path_not_a_pattern(tmp_path: Path) -> None:
    root = tmp_path / "landing[1]"
    land_day1(root)
    build(tmp_path, root)
    assert _count(tmp_path, "select count(*) from silver.int_transactions_deduplicated") == 3


# ---- 5. duplicate column names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("land_bad_file", "says"),
    [
        (land_duplicate_column, "more than one column transaction_id"),
        # ---- 6. errors that name the file
        (land_corrupt_pages, "move it out of the landing folder"),
        (land_non_utf8_name, "not UTF-8"),
    ],
    ids=["duplicate-column", "corrupt-pages", "non-utf8-name"],
)
def test_a_bad_file_stops_the_build_with_one_line_naming_it(
    tmp_path: Path, land_bad_file, says: str
) -> None:
    # given a good day and one bad file next to it
    root = tmp_path / "landing"
    land_day1(root)
    bad = land_bad_file(root)
    # when the landing layers build, then they stop with one line naming the file
    with pytest.raises(DbtError) as failed:
        build(tmp_path, root)
    message = _one_line_error(failed)
    shown = "transactions_2018-04-01_caf\\xe9.parquet" if isinstance(bad, bytes) else str(bad)
    assert shown in message and says in message, message


# ---- 7. smaller ------------------------------------------------------------------------------


def test_secrets_files_are_git_ignored() -> None:
    for name in (".env", ".databrickscfg"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", name], cwd=PROJECT_DIR, check=False
        ).returncode
        assert ignored == 0, name


def test_skipped_entries_of_a_feed_are_listed_in_a_warning(tmp_path: Path) -> None:
    # given a valid day next to a sub-folder, a broken symlink and an upper-case .PARQUET file
    root = tmp_path / "landing"
    day = land_day1(root).parent
    land_day1(root, range(10, 12), name="transactions_2018-04-01_b")
    os.rename(day / "transactions_2018-04-01_b.parquet", day / "transactions_2018-04-01_b.PARQUET")
    land_day1(root / "transactions" / f"tx_date={D1}", range(12, 13), name="nested")
    (day / "gone.parquet").symlink_to(tmp_path / "nowhere.parquet")

    # when it is built: green, and the output says what was not read
    result = build(tmp_path, root)
    warning = [line for line in result.stdout.splitlines() if "not read" in line]
    assert len(warning) == 1
    for skipped in (
        "transactions_2018-04-01_b.PARQUET",
        "tx_date=2018-04-01/transactions",
        "gone.parquet",
    ):
        assert skipped in warning[0]
    assert _count(tmp_path, BRONZE_TX) == 3


def test_timestamps_out_of_range_are_quarantined(tmp_path: Path) -> None:
    # given a transaction in year 1, one just before 2000, a valid one, one a century ahead, and a
    # report dated before 2000
    root = tmp_path / "landing"
    write_file(
        root,
        "transactions",
        f"tx_date={D1}",
        "transactions_2018-04-01",
        transactions_table(
            [
                tx(1, dt.datetime(1, 1, 1)),
                tx(2, dt.datetime(1999, 12, 31, 23, 59, 59)),
                tx(3, at(D1, 1)),
            ]
        ),
    )
    write_file(
        root,
        "transactions",
        "tx_date=2118-04-01",
        "transactions_2118-04-01",
        transactions_table([tx(4, dt.datetime(2118, 4, 1, 1))]),
    )
    write_file(
        root,
        "fraud_reports",
        f"report_date={D2}",
        "fraud_reports_2018-04-02",
        reports_table([report(3, dt.datetime(1999, 1, 1)), report(9, at(D2, 1))]),
    )
    build(tmp_path, root)
    rows = query(
        tmp_path, "select feed, transaction_id, reason from gold.landing_quarantine order by 1, 2"
    )
    assert rows == [
        ("fraud_reports", "3", "timestamp_out_of_range"),
        ("transactions", "1", "timestamp_out_of_range"),
        ("transactions", "2", "timestamp_out_of_range"),
        ("transactions", "4", "timestamp_out_of_range"),
    ]
