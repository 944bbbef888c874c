"""Bronze, silver and the landing marts built incrementally, step by step, equal a full refresh.

A small simulated world lands a few days at a time (ml.landing.write_landing) and, in later
steps, bad rows land next to it (tests/fixtures/bad_landing.py helpers): a conflicting copy of
a transaction kept in silver since the first step (and of its fraud report's transaction, so
the report goes back to waiting), a conflicting copy of a lone late transaction (its day must
vanish from fraud_kpis_daily), an exact re-delivery of a transaction and of a report, rows with
null and unparseable ids, fraud reports that land before their transactions (one matched later,
one reported before its transaction) and a conflicting copy of a kept report. After each step
`dbt run` (the first and last steps `dbt build`, with the tests) of the landing layers and
fraud_kpis_daily; then silver and the marts are rebuilt with --full-refresh from the same bronze,
and every table must agree row for row (floats within 1e-12: sums over other row sets may round
differently in the last bit). Bronze itself is compared with a bronze built in one go in a
second warehouse (all but _loaded_at, the load time).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from support.dbt import dbt_env, read_tables
from fixtures.bad_landing import at, report, reports_table, transactions_table, tx, write_file

from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import SimulationSettings, load_settings
from ml.world.landing import write_landing
from ml.world.simulator import simulate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
# (first day, last day) landed before each build, as offsets from the simulation start
STEPS = [(0, 9), (10, 10), (11, 13), (14, 15)]
SELECTION = [
    "+landing_quarantine",
    "+landing_exact_duplicates",
    "+fraud_kpis_daily",
    "+int_transactions_deduplicated",
    "+int_fraud_reports_deduplicated",
    "+transaction_features",
]
SILVER_AND_MARTS = [
    "int_transactions_validated",
    "int_fraud_reports_validated",
    "int_transactions_deduplicated",
    "int_fraud_reports_deduplicated",
    "landing_quarantine",
    "landing_exact_duplicates",
    "fraud_kpis_daily",
    "transaction_features",
]
TABLES = {
    "int_transactions_validated": "silver.int_transactions_validated",
    "int_fraud_reports_validated": "silver.int_fraud_reports_validated",
    "int_transactions_deduplicated": "silver.int_transactions_deduplicated",
    "int_fraud_reports_deduplicated": "silver.int_fraud_reports_deduplicated",
    "landing_quarantine": "gold.landing_quarantine",
    "landing_exact_duplicates": "gold.landing_exact_duplicates",
    "fraud_kpis_daily": "gold.fraud_kpis_daily",
    # gold too: a conflicting copy retracts a transaction the table already holds
    "transaction_features": "gold.transaction_features",
}
BRONZE = ["bronze.stg_landing__transactions", "bronze.stg_landing__fraud_reports"]
# ids of the hand-made rows, above every simulated id
LONE, AWAITED, EARLY_REPORTED = 10**9 + 1, 10**9 + 2, 10**9 + 3




def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in a deterministic order: by every non-float column, then the floats."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    others = [c for c in frame.columns if c not in floats]
    keys = pd.DataFrame({c: frame[c].map(lambda v: "" if pd.isna(v) else repr(v)) for c in others})
    order = (
        keys.assign(**{c: frame[c] for c in floats})
        .sort_values(others + floats, kind="stable")
        .index
    )
    return frame.loc[order].reset_index(drop=True)


def assert_same_rows(
    incremental: pd.DataFrame, full: pd.DataFrame, name: str, rtol: float = 1e-12
) -> None:
    assert list(incremental.columns) == list(full.columns), name
    assert len(incremental) == len(full), (
        f"{name}: {len(incremental)} rows incrementally, {len(full)} in full"
    )
    pd.testing.assert_frame_equal(
        canonical(incremental), canonical(full), check_exact=False, rtol=rtol, atol=0, obj=name
    )


def test_step_by_step_build_equals_full_refresh(tmp_path: Path) -> None:
    # given a small world landed step by step, with bad rows arriving in the later steps
    landing = tmp_path / "landing"
    env = dbt_env(tmp_path, landing)
    world = simulate(
        SimulationSettings(customers=100, terminals=100, days=STEPS[-1][1] + 1, seed=5)
    )
    day = [world.start + dt.timedelta(days=offset) for offset in range(STEPS[-1][1] + 1)]
    transactions, reports = world.transactions, world.fraud_reports
    first_step_end = pd.Timestamp(day[STEPS[1][0]])
    # a transaction with a report landed in the first step, one without, and a second report
    first_reports = reports[reports["reported_at"] < first_step_end]
    reported = transactions[transactions["transaction_id"].isin(first_reports["transaction_id"])]
    victim = reported.iloc[0]
    redelivered = transactions[
        (transactions["tx_datetime"] < first_step_end)
        & ~transactions["transaction_id"].isin(first_reports["transaction_id"])
    ].iloc[0]
    report_redelivered = first_reports[
        first_reports["transaction_id"] != victim["transaction_id"]
    ].iloc[0]
    report_conflicted = first_reports[
        ~first_reports["transaction_id"].isin(
            [victim["transaction_id"], report_redelivered["transaction_id"]]
        )
    ].iloc[0]

    def copy_of(row: pd.Series, **changes: object) -> dict:
        values = {
            "transaction_id": int(row["transaction_id"]),
            "tx_datetime": row["tx_datetime"].to_pydatetime(),
            "customer_id": int(row["customer_id"]),
            "terminal_id": int(row["terminal_id"]),
            "tx_amount": float(row["tx_amount"]),
        }
        return {**values, **changes}

    def report_of(row: pd.Series, **changes: object) -> dict:
        values = {
            "transaction_id": int(row["transaction_id"]),
            "reported_at": row["reported_at"].to_pydatetime(),
            "fraud_scenario": int(row["fraud_scenario"]),
        }
        return {**values, **changes}

    def land_bad_rows(step: int) -> None:
        d = day[STEPS[step][0]]
        if step == 0:
            # a valid transaction landed late, alone on its day; two reports before their transactions
            write_file(
                landing,
                "transactions",
                f"tx_date={d}",
                f"transactions_{d}_late",
                transactions_table([tx(LONE, at(d - dt.timedelta(days=20), 12), tx_amount=42.0)]),
            )
            write_file(
                landing,
                "fraud_reports",
                f"report_date={d}",
                f"fraud_reports_{d}_early",
                reports_table([report(AWAITED, at(d, 20)), report(EARLY_REPORTED, at(d, 21))]),
            )
        elif step == 1:
            # other contents of two kept transactions, an exact re-delivery, null and unparseable ids
            write_file(
                landing,
                "transactions",
                f"tx_date={d}",
                f"transactions_{d}_corrections",
                transactions_table(
                    [
                        copy_of(victim, tx_amount=float(victim["tx_amount"]) + 1.0),
                        tx(LONE, at(day[0] - dt.timedelta(days=20), 12), tx_amount=43.0),
                        copy_of(redelivered),
                    ]
                ),
            )
            write_file(
                landing,
                "transactions",
                f"tx_date={d}",
                f"transactions_{d}_bad_ids",
                transactions_table(
                    [tx(None, at(d, 3)), tx("x1", at(d, 4)), tx("17.5", at(d, 5))],
                    types={"transaction_id": pa.string()},
                ),
            )
            write_file(
                landing,
                "fraud_reports",
                f"report_date={d}",
                f"fraud_reports_{d}_redelivered",
                reports_table([report_of(report_redelivered)]),
            )
        elif step == 2:
            # the awaited transactions land; a kept report lands again with another scenario
            write_file(
                landing,
                "transactions",
                f"tx_date={d}",
                f"transactions_{d}_late",
                transactions_table(
                    [tx(AWAITED, at(day[0], 10)), tx(EARLY_REPORTED, at(day[0], 22))]
                ),
            )
            write_file(
                landing,
                "fraud_reports",
                f"report_date={d}",
                f"fraud_reports_{d}_corrections",
                reports_table(
                    [
                        report_of(
                            report_conflicted,
                            fraud_scenario=int(report_conflicted["fraud_scenario"]) % 3 + 1,
                        ),
                        report(None, at(d, 1)),
                    ]
                ),
            )
        elif step == 3:
            # the first content of the conflicting transaction again: still conflicting
            write_file(
                landing,
                "transactions",
                f"tx_date={d}",
                f"transactions_{d}_redelivered",
                transactions_table([copy_of(victim)]),
            )

    def dbt(*args: str, run_env: dict[str, str] = env) -> DbtResult:
        return run_dbt(
            list(args), project_dir=REPO_ROOT, target_path=tmp_path / "target", env=run_env
        )

    # when each step lands and is built incrementally (first and last with the tests)
    steps: list[DbtResult] = []
    observed: list[dict[str, pd.DataFrame]] = []
    for number, (first, last) in enumerate(STEPS):
        write_landing(world, landing, from_day=day[first], to_day=day[last])
        land_bad_rows(number)
        command = "build" if number in (0, len(STEPS) - 1) else "run"
        steps.append(dbt(command, "--select", *SELECTION, "--indirect-selection", "cautious"))
        observed.append(
            read_tables(
                env,
                [
                    "silver.int_transactions_deduplicated",
                    "silver.int_fraud_reports_deduplicated",
                    "gold.fraud_kpis_daily",
                ],
            )
        )
    incremental = read_tables(env, list(TABLES.values()) + BRONZE)
    # and silver and the marts are rebuilt in full from the same bronze
    dbt("run", "--select", *SILVER_AND_MARTS, "--full-refresh")
    full = read_tables(env, list(TABLES.values()))
    # and bronze is built in one go in another warehouse over the same landing zone
    other_env = {**env, "FRAUDOPS_DUCKDB_PATH": str(tmp_path / "other.duckdb")}
    dbt(
        "run",
        "--select",
        "stg_landing__transactions",
        "stg_landing__fraud_reports",
        run_env=other_env,
    )
    bronze_at_once = read_tables(other_env, BRONZE)

    # then every later step was incremental, bronze reading only the step's new files
    for number, step in enumerate(steps):
        nodes = {
            uid.split(".")[-1]: node for uid, node in step.nodes.items() if uid.startswith("model.")
        }
        assert {n["status"] for n in nodes.values()} == {"success"}
        later = number > 0
        assert ("new_landed as (" in nodes["int_transactions_validated"]["compiled_code"]) is later
        assert (
            "rematched_ids as (" in nodes["int_fraud_reports_validated"]["compiled_code"]
        ) is later
        assert (
            "changed_transaction_ids as (" in nodes["fraud_kpis_daily"]["compiled_code"]
        ) is later
        bronze_read = nodes["stg_landing__transactions"]["compiled_code"]
        assert ("read_parquet([" in bronze_read) is later
        if later:
            first = STEPS[number][0]
            assert f"tx_date={day[first]}" in bronze_read
            assert f"tx_date={day[first - 1]}" not in bronze_read
    failed = {
        uid: n["status"]
        for s in (steps[0], steps[-1])
        for uid, n in s.nodes.items()
        if n["status"] not in ("pass", "success")
    }
    assert not failed
    assert any(uid.startswith("unit_test.") for uid in steps[-1].nodes)

    # and the hard cases did happen along the way
    def silver_ids(number: int) -> set[int]:
        return set(observed[number]["silver.int_transactions_deduplicated"]["transaction_id"])

    def report_status(number: int) -> dict[int, str]:
        frame = observed[number]["silver.int_fraud_reports_deduplicated"]
        return dict(zip(frame["transaction_id"], frame["match_status"], strict=True))

    def kpi_days(number: int) -> set[dt.date]:
        return set(pd.to_datetime(observed[number]["gold.fraud_kpis_daily"]["tx_date"]).dt.date)

    victim_id = int(victim["transaction_id"])
    lone_day = day[0] - dt.timedelta(days=20)
    assert {victim_id, LONE} <= silver_ids(0) and not {victim_id, LONE} & silver_ids(1)
    assert lone_day in kpi_days(0) and lone_day not in kpi_days(1)
    assert (
        report_status(0)[victim_id] == "matched"
        and report_status(1)[victim_id] == "awaiting_transaction"
    )
    assert (
        report_status(1)[AWAITED] == "awaiting_transaction"
        and report_status(2)[AWAITED] == "matched"
    )
    assert EARLY_REPORTED in report_status(1) and EARLY_REPORTED not in report_status(2)
    assert int(report_conflicted["transaction_id"]) in report_status(1)
    assert int(report_conflicted["transaction_id"]) not in report_status(2)
    quarantine = full["gold.landing_quarantine"]
    reasons = quarantine.groupby(["feed", "reason"]).size().to_dict()
    assert reasons == {
        ("transactions", "conflicting_duplicate"): 5,  # the victim's 3 copies and the lone one's 2
        ("transactions", "missing_transaction_id"): 1,
        ("transactions", "unparseable_value"): 2,
        ("fraud_reports", "conflicting_duplicate"): 2,
        ("fraud_reports", "missing_transaction_id"): 1,
        ("fraud_reports", "reported_before_transaction"): 1,
    }
    assert full["gold.landing_exact_duplicates"].groupby("feed").size().to_dict() == {
        "transactions": 1,
        "fraud_reports": 1,
    }

    # and the incremental tables equal the full refresh, row for row
    for relation in TABLES.values():
        # feature windows summed over other sets of rows may differ in the last bits
        rtol = 1e-9 if relation == "gold.transaction_features" else 1e-12
        assert_same_rows(incremental[relation], full[relation], relation, rtol=rtol)
    assert len(full["silver.int_transactions_deduplicated"]) > 1_000
    assert len(full["silver.int_fraud_reports_deduplicated"]) > 10
    # and bronze loaded file by file equals bronze loaded at once (but for the load time)
    for relation in BRONZE:
        assert_same_rows(
            incremental[relation].drop(columns="_loaded_at"),
            bronze_at_once[relation].drop(columns="_loaded_at"),
            relation,
        )
