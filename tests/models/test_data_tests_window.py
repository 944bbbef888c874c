"""The daily builds' data tests read the days the latest load can have changed (dbt var
data_tests_scope = 'latest_load', macros/data_tests_window.sql), every row otherwise.

A small world is landed and built in two loads (all days but the last, then the last day, as a
daily build with its tests in the latest-load scope); then defects are planted in gold and the
tests of the touched columns run in both scopes: a defect on an old day is caught by the
whole-table scope only, one on the latest day by both, one in an older row that the latest
load's fraud reports relabelled by the daily scope too, and a late file re-delivering an old
day widens the window to that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from support.common import REPO_ROOT
from support.dbt import dbt_env

from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.settings import SimulationSettings
from ml.world.landing import write_landing
from ml.world.simulator import simulate

pytestmark = pytest.mark.slow

DAYS = 42
FEATURES = "gold.transaction_features"
# the gold tests of the planted defects: tx_amount >= 0, and the singular test comparing
# transaction_features with fraud_kpis_daily day by day
AMOUNT_TEST = "expression_is_true_transaction_features_tx_amount___0"
KPIS_TEST = "test_transaction_features__matches_daily_kpis"
LATEST = "{data_tests_scope: latest_load}"


class Warehouse:
    """A test's warehouse, its landing zone, and dbt over them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = dbt_env(workdir)
        self.world = simulate(SimulationSettings(customers=60, terminals=120, days=DAYS, seed=5))
        self.daily: DbtResult | None = None  # the daily build of the last day

    def land(self, first: int, last: int) -> None:
        start = self.world.start
        write_landing(
            self.world,
            self.workdir / "landing",
            from_day=start + dt.timedelta(days=first),
            to_day=start + dt.timedelta(days=last),
        )

    def dbt(self, *args: str, check: bool = True) -> DbtResult:
        return run_dbt(
            list(args),
            project_dir=REPO_ROOT,
            target_path=self.workdir / "target",
            env=self.env,
            check=check,
        )

    def test_statuses(self, scope: str, *tests: str) -> dict[str, str]:
        """Run ``tests`` in ``scope``; their statuses by test name."""
        args = ["test", "--select", *tests, "--vars", f"{{data_tests_scope: {scope}}}"]
        result = self.dbt(*args, check=False)
        return {
            uid.split(".")[2]: node["status"]
            for uid, node in result.nodes.items()
            if uid.startswith("test.")
        }

    def execute(self, sql: str) -> list[tuple]:
        with duckdb.connect(self.env["FRAUDOPS_DUCKDB_PATH"]) as con:
            return con.execute(sql).fetchall()

    def day(self, offset: int) -> dt.date:
        return self.world.start + dt.timedelta(days=offset)

    def plant_negative_amount(
        self, day: dt.date, relabelled_on: dt.date | None = None
    ) -> Callable[[], None]:
        """Make one feature row of ``day`` (reported on ``relabelled_on``, if given) have a
        negative amount; return what undoes it."""
        reported = (
            f"and cast(fraud_reported_at as date) = '{relabelled_on}'" if relabelled_on else ""
        )
        [(tx_id, amount)] = self.execute(
            f"select transaction_id, tx_amount from {FEATURES} where tx_date = '{day}' "
            f"{reported} order by transaction_id limit 1"
        )
        self.execute(f"update {FEATURES} set tx_amount = -1 where transaction_id = {tx_id}")
        return lambda: self.execute(
            f"update {FEATURES} set tx_amount = {amount!r} where transaction_id = {tx_id}"
        )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("data_tests_window"))
    wh.land(0, DAYS - 2)
    wh.dbt("seed")
    wh.dbt("run", "--selector", "medallion")
    wh.land(DAYS - 1, DAYS - 1)
    wh.daily = wh.dbt(
        "build", "--selector", "medallion", "--exclude-resource-type", "unit_test", "seed",
        "--vars", LATEST, check=False,
    )  # fmt: skip
    return wh


def test_a_daily_build_passes_its_latest_load_tests(warehouse: Warehouse) -> None:
    # given the last day landed after the others were built
    # when the daily build ran with its data tests in the latest-load scope
    statuses = {uid: n["status"] for uid, n in warehouse.daily.nodes.items()}
    tests = {uid: status for uid, status in statuses.items() if uid.startswith("test.")}
    # then every model was built and every data test passed, the singular ones included
    assert len(tests) > 100, statuses
    assert set(tests.values()) == {"pass"}, tests
    assert set(statuses.values()) <= {"success", "pass", "no-op"}, statuses
    assert f"test.fraudops.{KPIS_TEST}" in statuses
    assert "test.fraudops.test_transaction_features__no_future_dependence" in statuses
    assert "test.fraudops.test_landing__rows_conserved" in statuses


def test_the_window_starts_at_the_earliest_day_of_the_latest_load(warehouse: Warehouse) -> None:
    # given the last load brought day DAYS-1's transactions and fraud reports
    # when the window's start is compiled and evaluated
    inline = "select {{ data_tests_window_start() }} as window_start"
    result = warehouse.dbt("compile", "--inline", inline, "--vars", LATEST)
    [(start,)] = warehouse.execute(next(iter(result.nodes.values()))["compiled_code"])
    # then it is that day
    assert start == warehouse.day(DAYS - 1)


def test_a_defect_in_a_row_the_latest_load_relabelled_is_caught(warehouse: Warehouse) -> None:
    # given a transaction of an older day, reported (relabelled) by the latest load
    [(day,)] = warehouse.execute(
        f"select min(tx_date) from {FEATURES} "
        f"where cast(fraud_reported_at as date) = '{warehouse.day(DAYS - 1)}'"
    )
    assert day < warehouse.day(DAYS - 1)
    restore = warehouse.plant_negative_amount(day, relabelled_on=warehouse.day(DAYS - 1))
    try:
        # when the amount test runs in the latest-load scope
        latest = warehouse.test_statuses("latest_load", AMOUNT_TEST)
    finally:
        restore()
    # then the relabelled row is in the window
    assert latest == {AMOUNT_TEST: "fail"}


def test_a_defect_on_an_old_day_is_caught_by_the_whole_table_tests_only(
    warehouse: Warehouse,
) -> None:
    # given a negative amount planted on the first day, outside the latest load's window
    restore = warehouse.plant_negative_amount(warehouse.day(0))
    try:
        # when the amount test runs in each scope
        whole = warehouse.test_statuses("all", AMOUNT_TEST)
        latest = warehouse.test_statuses("latest_load", AMOUNT_TEST)
    finally:
        restore()
    # then only the whole-table scope sees it
    assert whole == {AMOUNT_TEST: "fail"}
    assert latest == {AMOUNT_TEST: "pass"}


def test_a_defect_on_the_latest_day_is_caught_in_both_scopes(warehouse: Warehouse) -> None:
    # given a transaction of the last day removed from the feature table
    day = warehouse.day(DAYS - 1)
    [(tx_id,)] = warehouse.execute(
        f"select min(transaction_id) from {FEATURES} where tx_date = '{day}'"
    )
    [row] = warehouse.execute(f"select * from {FEATURES} where transaction_id = {tx_id}")
    warehouse.execute(f"delete from {FEATURES} where transaction_id = {tx_id}")
    try:
        # when the singular test comparing features with the daily KPIs runs in each scope
        whole = warehouse.test_statuses("all", KPIS_TEST)
        latest = warehouse.test_statuses("latest_load", KPIS_TEST)
    finally:
        placeholders = ", ".join("?" for _ in row)
        with duckdb.connect(warehouse.env["FRAUDOPS_DUCKDB_PATH"]) as con:
            con.execute(f"insert into {FEATURES} values ({placeholders})", list(row))
    # then both scopes see it
    assert whole == {KPIS_TEST: "fail"}
    assert latest == {KPIS_TEST: "fail"}


def test_a_late_file_of_an_old_day_widens_the_window(warehouse: Warehouse) -> None:
    # given the first day's transactions delivered again (a late, duplicated file) and loaded
    late = warehouse.workdir / "landing" / "transactions"
    first_day = sorted(late.rglob("*.parquet"))[0]
    copy = first_day.with_name("redelivered-" + first_day.name)
    copy.write_bytes(first_day.read_bytes())
    warehouse.dbt("run", "--selector", "medallion", "--vars", LATEST)
    restore = warehouse.plant_negative_amount(warehouse.day(0))
    try:
        # when the amount test runs in the latest-load scope
        latest = warehouse.test_statuses("latest_load", AMOUNT_TEST)
    finally:
        restore()
    # then the first day is in the window again, and its defect is caught
    assert latest == {AMOUNT_TEST: "fail"}


def test_a_feed_tested_before_the_other_feeds_first_build_passes(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # given a new warehouse where only the transactions feed has been built so far (the other
    # bronze table does not exist yet: on a first build, dbt may test one feed before it
    # builds the other)
    fresh = Warehouse.__new__(Warehouse)
    fresh.workdir, fresh.world = warehouse.workdir, warehouse.world
    fresh.env = {**warehouse.env, "FRAUDOPS_DUCKDB_PATH": str(tmp_path / "fresh.duckdb")}
    # when its tests run in the daily scope
    result = fresh.dbt(
        "build", "--select", "stg_landing__transactions", "--indirect-selection", "cautious",
        "--exclude-resource-type", "unit_test",
        "--vars", LATEST, check=False,
    )  # fmt: skip
    # then they read the window of the one feed that exists, and pass
    tests = {uid: n["status"] for uid, n in result.nodes.items() if uid.startswith("test.")}
    assert tests and set(tests.values()) == {"pass"}, tests
