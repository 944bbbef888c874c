"""Issue 14: `ml replay` killed with SIGKILL while its dbt worker builds. The worker dies with it
(it would otherwise write on, holding the warehouse's lock), an immediate rerun resumes, and the
warehouse ends as an uninterrupted replay leaves it.

Real processes: two `ml replay` subprocesses of the same tiny world (tests/support/replay.py, one
replayed day), one left alone, one killed during its day's dbt build. About a minute on 2 cores.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from support.processes import children, cmdline, is_gone, kill9, ml_env, start_ml, wait_for
from support.replay import (
    BOOTSTRAP_DAY,
    START,
    assert_no_duplicates,
    event_list,
    settings_file,
    tables,
)

from ml.platform.settings import load_settings

pytestmark = pytest.mark.slow

ONE_DAY = {"replay": {"end": START.isoformat()}}


def test_a_replay_killed_during_a_dbt_build_takes_its_worker_along_and_resumes_as_if_uninterrupted(
    replay_root,
):
    # given two replays of the same world in their own folders, started at the same time
    roots = {name: replay_root(name) for name in ("straight", "killed")}
    files = {name: settings_file(root, **ONE_DAY) for name, root in roots.items()}
    envs = {
        name: ml_env(
            FRAUDOPS_DUCKDB_PATH=str(root / "warehouse.duckdb"),
            DBT_TARGET_PATH=str(root / "target"),
        )
        for name, root in roots.items()
    }
    runs = {
        name: start_ml(["replay", "--settings", str(files[name])], envs[name], roots[name] / "out")
        for name in roots
    }
    killed, out = runs["killed"], roots["killed"] / "out"
    worker_log = roots["killed"] / "target" / "dbt-worker.log"

    # when the second one has bootstrapped and its worker is building the day (a model done, more
    # to come), it is killed with SIGKILL
    wait_for("the bootstrap", lambda: f"{BOOTSTRAP_DAY} bootstrap" in out.read_text(), 300)
    assert killed.poll() is None, out.read_text()
    offset = worker_log.stat().st_size
    workers = [pid for pid in children(killed.pid) if "dbt_worker_main" in cmdline(pid)]
    assert len(workers) == 1, [cmdline(pid) for pid in children(killed.pid)]

    def building() -> bool:
        with worker_log.open() as log:
            log.seek(offset)
            return re.search(r" OK created ", log.read()) is not None

    wait_for("the day's dbt build", building, 120, poll=0.01)
    kill9(killed)

    # then its dbt worker is gone within two seconds
    wait_for("the dbt worker to die with the replay", lambda: is_gone(workers[0]), 2)

    # and an immediate rerun gets the warehouse (no lock error) and completes the day
    again = start_ml(["replay", "--settings", str(files["killed"])], envs["killed"], out)
    assert again.wait(timeout=300) == 0, out.read_text()
    assert "lock" not in out.read_text().lower()
    assert runs["straight"].wait(timeout=300) == 0, (roots["straight"] / "out").read_text()

    # and the warehouse holds what the uninterrupted replay wrote: the same events, the same
    # predictions (versions and scores), the same bronze rows, nothing twice
    result = {}
    for name in roots:
        replay_root(name)  # the warehouse of that replay
        result[name] = tables(load_settings(files[name]))
        assert_no_duplicates(result[name])
    assert event_list(result["killed"]) == event_list(result["straight"])
    columns = ["transaction_id", "model_version", "score", "is_alert"]
    pd.testing.assert_frame_equal(
        *(
            result[name]["predictions"][columns].sort_values(columns[:2], ignore_index=True)
            for name in ("killed", "straight")
        )
    )
    for table in ("bronze", "bronze_reports", "features"):
        assert len(result["killed"][table]) == len(result["straight"][table]), table
