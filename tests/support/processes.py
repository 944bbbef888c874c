"""Helpers of the crash tests (issue 14): run ``ml`` as a real process, find its children, kill it
with SIGKILL and tell when a process is gone (Linux /proc; no psutil)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from support.common import REPO_ROOT

#: The ``ml`` command in a fresh interpreter of this environment (no console script needed).
ML = [sys.executable, "-c", "from ml.cli import app; app()"]
#: Variables of the test process that must not leak into an isolated ``ml`` process.
_LEAKY = ("FRAUDOPS_TARGET", "FRAUDOPS_SETTINGS_FILE", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def ml_env(**variables: str) -> dict[str, str]:
    """The environment of an isolated ``ml`` process: this one's, without the leaky variables and
    FRAUDOPS__ overrides, plus ``variables``."""
    env = {
        k: v for k, v in os.environ.items() if k not in _LEAKY and not k.startswith("FRAUDOPS__")
    }
    return {**env, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **variables}


def start_ml(args: list[str], env: Mapping[str, str], output: Path) -> subprocess.Popen:
    """Start ``ml <args>`` with stdout and stderr going to the file ``output``."""
    with output.open("w") as sink:
        return subprocess.Popen(
            [*ML, *args], cwd=REPO_ROOT, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
        )


def wait_for(what: str, condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> None:
    """Wait until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (started by any of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_gone(pid: int) -> bool:
    """True once ``pid`` has ended: no such process, or a zombie nobody reaped yet (a dead
    process whose parent, e.g. a container's init, does not wait for it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def kill9(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` (no handler, no cleanup: what a crash, the OOM killer or kill -9 do)."""
    process.kill()
    process.wait(timeout=10)
