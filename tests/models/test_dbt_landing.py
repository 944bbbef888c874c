"""The bronze layer loads each landing file once (idempotent, new files add exactly their rows)
and silver re-judges fraud reports as their transactions arrive."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fixtures.bad_landing import (
    D1,
    D2,
    D3,
    at,
    build_landing,
    query,
    report,
    reports_table,
    transactions_table,
    tx,
    write_file,
)

pytestmark = pytest.mark.slow

COUNTS = """
    select
        (select count(*) from bronze.stg_landing__transactions),
        (select count(*) from bronze.stg_landing__fraud_reports),
        (select count(*) from silver.int_transactions_deduplicated),
        (select count(*) from silver.int_fraud_reports_deduplicated),
        (select count(distinct _loaded_at) from bronze.stg_landing__transactions)
"""


@dataclass
class Step:
    counts: tuple  # bronze tx, bronze reports, silver tx, silver reports, loads of bronze tx
    reports: dict[int, str] = field(default_factory=dict)  # transaction_id -> match_status


def _observe(workdir: Path) -> Step:
    [counts] = query(workdir, COUNTS)
    reports = query(
        workdir, "select transaction_id, match_status from silver.int_fraud_reports_deduplicated"
    )
    return Step(counts=counts, reports=dict(reports))


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Step]:
    """Land files in three batches and build after each; build once more without new files."""
    workdir = tmp_path_factory.mktemp("landing_steps")
    root = workdir / "landing"
    observed: dict[str, Step] = {}

    # given day 1 transactions only: the fraud-report feed has not started
    write_file(
        root,
        "transactions",
        f"tx_date={D1}",
        "transactions_2018-04-01",
        transactions_table([tx(i, at(D1, i)) for i in range(1, 6)]),
    )
    build_landing(workdir, root)
    observed["first"] = _observe(workdir)

    # when day 2 lands, with a report of transaction 50, which only lands on day 3
    write_file(
        root,
        "transactions",
        f"tx_date={D2}",
        "transactions_2018-04-02",
        transactions_table([tx(i, at(D2, i)) for i in range(6, 9)]),
    )
    write_file(
        root,
        "fraud_reports",
        f"report_date={D2}",
        "fraud_reports_2018-04-02",
        reports_table([report(1, at(D2, 1)), report(50, at(D2, 2))]),
    )
    build_landing(workdir, root, command="run")
    observed["second"] = _observe(workdir)

    # when nothing new has landed
    build_landing(workdir, root, command="run")
    observed["again"] = _observe(workdir)

    # when day 3 lands, with transaction 50 (made on day 1, landed late) and one more report
    write_file(
        root,
        "transactions",
        f"tx_date={D3}",
        "transactions_2018-04-03",
        transactions_table(
            [tx(50, at(D1, 23)), tx(51, at(D3, 1)), tx(52, at(D3, 2)), tx(53, at(D3, 3))]
        ),
    )
    write_file(
        root,
        "fraud_reports",
        f"report_date={D3}",
        "fraud_reports_2018-04-03",
        reports_table([report(6, at(D3, 5))]),
    )
    build_landing(workdir, root)
    observed["third"] = _observe(workdir)
    return observed


def test_a_feed_without_files_builds_empty(steps: dict[str, Step]) -> None:
    assert steps["first"].counts == (5, 0, 5, 0, 1)


def test_new_files_add_exactly_their_rows(steps: dict[str, Step]) -> None:
    assert steps["second"].counts == (5 + 3, 2, 8, 2, 2)
    assert steps["third"].counts == (8 + 4, 2 + 1, 12, 3, 3)


def test_a_build_over_the_same_files_adds_nothing(steps: dict[str, Step]) -> None:
    assert steps["again"] == steps["second"]


def test_a_report_waits_for_its_transaction_then_matches(steps: dict[str, Step]) -> None:
    assert steps["second"].reports == {1: "matched", 50: "awaiting_transaction"}
    assert steps["third"].reports == {1: "matched", 50: "matched", 6: "matched"}
