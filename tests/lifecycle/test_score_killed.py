"""Issue 14: `ml score` killed with SIGKILL writes all its rows or none, and a second `ml score`
while one is writing stops with one line: the warehouse is busy.

Real processes: `ml score` runs in a subprocess that stops inside its warehouse write (before or
after the commit; tests/fixtures/crash_points.py) and is killed there with SIGKILL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import is_gone, kill9, ml_env, wait_for
from support.registry import Reg
from typer.testing import CliRunner

from ml.cli import app
from ml.lifecycle import score
from ml.platform.runtime import Runtime

pytestmark = pytest.mark.slow  # `ml score` processes (imports, MLflow) take seconds each

CRASH_POINTS = Path(__file__).resolve().parents[1] / "fixtures" / "crash_points.py"


def _predictions(reg: Reg) -> int:
    with Runtime.build(reg.settings).warehouse(read_only=True) as wh:
        exists = wh.exists(score.PREDICTIONS)
        return int(wh.scalar(f"select count(*) from {score.PREDICTIONS}")) if exists else 0


def _score_stopping_at(point: str, reg: Reg) -> subprocess.Popen:
    """`ml score` in its own process, stopped at ``point`` of its write (once it is there)."""
    marker = reg.tmp_path / f"at-{point}"
    variables = ("FRAUDOPS_DUCKDB_PATH", "FRAUDOPS_SETTINGS_FILE", "DBT_TARGET_PATH")
    env = ml_env(**{name: os.environ[name] for name in variables})
    process = subprocess.Popen(
        [sys.executable, str(CRASH_POINTS), point, str(marker), "score"],
        env={**env, "PYTHONPATH": str(CRASH_POINTS.parents[1])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def stopped() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"ml score ended before {point}: {process.stdout.read()}")
        return marker.exists()

    wait_for(f"ml score to reach {point}", stopped, 120)
    return process


@pytest.mark.parametrize(("point", "written"), [("before-commit", 0), ("after-commit", 1)])
def test_a_killed_score_wrote_all_its_rows_or_none_and_a_rerun_completes(
    reg: Reg, champion: str, point: str, written: int
):
    # given `ml score` stopped inside its write
    process = _score_stopping_at(point, reg)

    # when it is killed with SIGKILL
    kill9(process)
    assert is_gone(process.pid)

    # then the warehouse holds none of its rows (killed before the commit) or all of them (after)
    transactions = len(reg.trained.frame)
    assert _predictions(reg) == written * transactions
    # and a rerun scores exactly what is missing, and one more adds nothing
    assert score.score(reg.rt).rows_added == (1 - written) * transactions
    assert score.score(reg.rt).rows_added == 0
    assert _predictions(reg) == transactions


def test_a_second_score_while_one_is_writing_says_the_warehouse_is_busy(reg: Reg, champion: str):
    # given `ml score` in the middle of its write (it holds the DuckDB file)
    first = _score_stopping_at("before-commit", reg)
    try:
        # when a second `ml score` starts
        result = CliRunner().invoke(app, ["score"])
    finally:
        kill9(first)

    # then it stops with one line saying the warehouse is busy and what to do, and writes nothing
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "is busy" in lines[0] and "re-run" in lines[0], lines[0]
    assert _predictions(reg) == 0
