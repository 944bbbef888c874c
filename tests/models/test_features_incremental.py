"""gold.transaction_features built incrementally, day by day, equals a full refresh.

The simulated world lands a few days at a time (ml.landing.write_landing), with `dbt run`/`dbt
build -s +transaction_features` after each step; fraud reports arrive up to 20 days after their
transaction (so later steps relabel rows built earlier and change their terminals' risks and
reported-fraud counts) and some of a card's transactions share a second. Then the table is
rebuilt with --full-refresh from the same silver rows, and every row and column must agree
(integers and timestamps exactly, floats within 1e-9: window sums over another set of rows may
round differently in the last bit).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from support.dbt import dbt_env, read_tables
from support.features import load_reference
from support.features import move_into_same_second

from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import SimulationSettings, load_settings
from ml.world.landing import write_landing
from ml.world.simulator import simulate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "model.fraudops.transaction_features"
# (first day, last day) landed before each build, as offsets from the simulation start. The
# later steps start after day 57 (20 days of label delay + 37 of look-back): their earliest
# recomputed rows then need history that is not the whole table, so a look-back that starts
# one day late fails the comparison (with a 45-day world even ten days late went unnoticed)
STEPS = [(0, 59), (60, 60), (61, 62), (63, 66)]




def test_day_by_day_build_equals_full_refresh(tmp_path: Path) -> None:
    # given a world with late reports and same-second transactions, landed step by step
    env = dbt_env(tmp_path)
    world = simulate(
        SimulationSettings(
            customers=150, terminals=150, days=STEPS[-1][1] + 1, seed=11, label_delay_days=20
        )
    )
    move_into_same_second(world, pairs=15)

    def dbt(*args: str) -> DbtResult:
        return run_dbt(list(args), project_dir=REPO_ROOT, target_path=tmp_path / "target", env=env)

    # when each step lands and is built (the last one with the model's tests)
    steps: list[DbtResult] = []
    for number, (first, last) in enumerate(STEPS):
        write_landing(
            world,
            tmp_path / "landing",
            from_day=world.start + dt.timedelta(days=first),
            to_day=world.start + dt.timedelta(days=last),
        )
        command = "build" if number == len(STEPS) - 1 else "run"
        steps.append(
            dbt(command, "--select", "+transaction_features", "--indirect-selection", "cautious")
        )
    incremental = _features(env)
    # and the table is rebuilt from scratch over the same silver rows
    dbt("run", "--select", "transaction_features", "--full-refresh")
    full = _features(env)

    # then every step after the first was an incremental run, and the last one's tests passed
    for step in steps[1:]:
        assert step.nodes[MODEL]["status"] == "success"
        assert "history_start" in step.nodes[MODEL]["compiled_code"]
    assert "history_start" not in steps[0].nodes[MODEL]["compiled_code"]
    failed = {
        uid: n["status"]
        for uid, n in steps[-1].nodes.items()
        if n["status"] not in ("pass", "success")
    }
    assert not failed
    # and the incremental table equals the full refresh, row for row and column for column
    assert sorted(incremental.columns) == sorted(full.columns)
    reference = load_reference()
    columns = [c for c in full.columns if c != "transaction_id"]
    comparison = reference.compare(incremental, full, columns)
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
    assert comparison.rows == len(full) == len(incremental) > 5_000
    # and the later steps did relabel rows built before them (reports of earlier transactions)
    reports = world.fraud_reports.merge(
        world.transactions[["transaction_id", "tx_datetime"]], on="transaction_id"
    )
    step_start = pd.Timestamp(world.start + dt.timedelta(days=STEPS[1][0]))
    assert (
        (reports["reported_at"] >= step_start) & (reports["tx_datetime"] < step_start)
    ).sum() > 10


def _features(env: dict[str, str]) -> pd.DataFrame:
    return read_tables(env, ["gold.transaction_features"])["gold.transaction_features"]
