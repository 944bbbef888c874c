"""The replay's dbt worker (ml/platform/dbt_worker.py) lives exactly as long as its session.

Linux's parent-death signal (prctl PR_SET_PDEATHSIG), which kills the worker when `ml` dies,
fires when the *thread* that started the worker ends. A session started from a short-lived
thread must keep its worker. (The kill -9 of a whole replay: tests/operations/test_replay_killed.py.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from support.processes import is_gone, wait_for

from ml.platform.dbt_worker import DbtSession
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings

pytestmark = pytest.mark.slow  # one dbt parse


def test_the_worker_outlives_the_thread_that_started_it_and_ends_with_the_session(
    warehouse_env: Path,
):
    # given a dbt session whose worker is started (and parses the project) from a thread that
    # then ends
    session = DbtSession(Runtime.build(load_settings()), worker=True)
    starter = threading.Thread(target=session.start)
    starter.start()
    starter.join()
    worker = session.worker_pid
    assert worker is not None

    # when that thread has ended, the worker still serves the session
    time.sleep(1)
    assert not is_gone(worker)

    # and when the session closes, the worker ends
    session.close()
    wait_for("the worker to end with its session", lambda: is_gone(worker), 10)
