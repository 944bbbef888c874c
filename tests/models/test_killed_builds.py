"""Issue 14: an incremental `dbt run` killed with SIGKILL (twice: while silver builds, then while
the feature table builds) and run again leaves the warehouse a full refresh would build; one more
run with nothing new changes nothing.

DuckDB commits each model on its own: a kill loses the model being built, never half of it, and
the next incremental run catches up from the high-water marks of what was committed (bronze
skips the files it loaded). The dbt processes are real and killed with SIGKILL (no handler).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from support.processes import kill9, wait_for

from ml.platform.dbt import run_dbt
from ml.platform.settings import SimulationSettings
from ml.world.landing import write_landing
from ml.world.simulator import simulate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRST_DAYS, LATER_DAYS = 10, 3
#: silver and gold models (bronze is compared by its rows: a full refresh reloads it)
REBUILT = {
    "int_transactions_validated": ("silver", "transaction_id"),
    "int_fraud_reports_validated": ("silver", "transaction_id"),
    "int_transactions_deduplicated": ("silver", "transaction_id"),
    "int_fraud_reports_deduplicated": ("silver", "transaction_id"),
    "landing_quarantine": ("gold", None),
    "landing_exact_duplicates": ("gold", None),
    "fraud_kpis_daily": ("gold", "tx_date"),
    "transaction_features": ("gold", "transaction_id"),
}


def _read(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {
            name: con.execute(f"select * from {schema}.{name}").df()
            for name, (schema, _key) in REBUILT.items()
        }
        for feed in ("transactions", "fraud_reports"):
            tables[feed] = con.execute(
                f"select * exclude (_loaded_at) from bronze.stg_landing__{feed}"
            ).df()
    return tables


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in frame.columns if c == "_loaded_at"])
    return frame.sort_values(list(frame.columns), ignore_index=True, na_position="first")


def test_killed_incremental_runs_rebuild_to_the_full_refresh(tmp_path: Path) -> None:
    # given a small world whose first days are built
    env = {
        "FRAUDOPS_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "FRAUDOPS_LANDING_ROOT": str(tmp_path / "landing"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
    }
    world = simulate(
        SimulationSettings(customers=100, terminals=100, days=FIRST_DAYS + LATER_DAYS, seed=8)
    )
    last_first = world.start + dt.timedelta(days=FIRST_DAYS - 1)
    write_landing(world, tmp_path / "landing", to_day=last_first)
    dbt_args = ["--project-dir", str(REPO_ROOT), "--profiles-dir", str(REPO_ROOT)]
    first = ["build", "--selector", "medallion", "--exclude-resource-type", "unit_test"]
    run_dbt(first, project_dir=REPO_ROOT, env=env)
    # and the next days landed
    write_landing(world, tmp_path / "landing", from_day=last_first + dt.timedelta(days=1))

    # when the incremental run is killed once a first model (bronze) is committed, its rerun is
    # killed while it builds the feature table, and the next rerun completes
    def killed_run(name: str, pattern: str) -> None:
        log = tmp_path / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", "from dbt.cli.main import cli; cli()", "run"]
                + ["--selector", "medallion", *dbt_args],
                cwd=REPO_ROOT,
                env={**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def reached() -> bool:
            assert process.poll() is None, f"dbt ended before {pattern!r}: {log.read_text()}"
            return re.search(pattern, log.read_text()) is not None

        wait_for(f"dbt to reach {pattern!r}", reached, 300, poll=0.01)
        kill9(process)

    killed_run("first-kill", r" OK created sql incremental model bronze\.")
    killed_run("second-kill", r" START sql incremental model gold\.transaction_features ")
    run_dbt(["run", "--selector", "medallion"], project_dir=REPO_ROOT, env=env)
    incremental = _read(tmp_path / "warehouse.duckdb")
    # and run once more with nothing new landed (idempotent: it must change nothing)
    run_dbt(["run", "--selector", "medallion"], project_dir=REPO_ROOT, env=env)
    again = _read(tmp_path / "warehouse.duckdb")
    # and silver and gold are rebuilt from scratch from the same bronze
    run_dbt(["run", "--full-refresh", "--select", *REBUILT], project_dir=REPO_ROOT, env=env)
    full = _read(tmp_path / "warehouse.duckdb")

    # then the killed-and-rerun warehouse is the full refresh's, table by table, and so is it
    # after the idempotent run
    assert len(incremental["transactions"]) == len(world.transactions)
    assert not incremental["transactions"].duplicated(["transaction_id", "_source_file"]).any()
    assert len(incremental["transaction_features"]) == len(world.transactions)
    for tables in (incremental, again):
        for feed in ("transactions", "fraud_reports"):
            pd.testing.assert_frame_equal(
                _canonical(tables[feed]), _canonical(full[feed]), obj=feed
            )
        for name in REBUILT:
            pd.testing.assert_frame_equal(
                _canonical(tables[name]),
                _canonical(full[name]),
                check_exact=False,
                rtol=1e-9,
                obj=name,
            )
