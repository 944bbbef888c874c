"""dbt for a long-running operation: one worker process on DuckDB, a subprocess per build elsewhere.

The worker imports dbt and parses the project once, then builds with the parsed manifest
(dbt-duckdb releases the database file after each build, so ``ml`` can write in between).

The worker dies with its parent, so that it never writes on behind a dead replay (holding the
warehouse's lock): it stops at the end of its input (the parent closed the pipe), and on Linux it
asks for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, which a ``kill -9`` of the
parent triggers too). Linux sends that signal when the parent *thread* that started the worker
ends, not the process: :class:`DbtSession` starts the worker from a thread of its own that lives
until the session closes, whatever thread asks for the first build.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ml.platform.dbt import DbtError, run_dbt
from ml.platform.targets import prepare_target

if TYPE_CHECKING:
    from ml.platform.runtime import Runtime

WORKER_LOG_VARIABLE = "FRAUDOPS_REPLAY_DBT_LOG"
PARENT_VARIABLE = "FRAUDOPS_DBT_WORKER_PARENT"


def dbt_worker_main() -> None:
    """The dbt worker process: parse once, then serve dbt commands with the parsed manifest.

    Requests and replies are JSON lines on stdin / the original stdout; dbt's own output goes to
    the log file named by ``$FRAUDOPS_REPLAY_DBT_LOG``. Ends at end of input (the replay closed
    the pipe, or died); killed at once when the process named by ``$FRAUDOPS_DBT_WORKER_PARENT``
    dies (:func:`_die_with_parent`).
    """
    import sys

    _die_with_parent(os.environ.get(PARENT_VARIABLE))

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    log = os.open(os.environ[WORKER_LOG_VARIABLE], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from dbt.cli.main import dbtRunner

    runner = None
    for line in sys.stdin:
        kind, args = json.loads(line)
        try:
            if kind == "parse":
                parsed = dbtRunner().invoke(args)
                runner = dbtRunner(manifest=parsed.result) if parsed.success else None
                reply = {
                    "success": bool(parsed.success),
                    "error": _dbt_exception(parsed),
                    "nodes": [],
                }
            elif runner is None:
                reply = {"success": False, "error": "the dbt project could not be parsed"}
            else:
                result = runner.invoke(args)
                _release_duckdb()
                reply = {
                    "success": bool(result.success),
                    "error": _dbt_exception(result),
                    "nodes": _dbt_nodes(result),
                }
        except Exception as exc:
            reply = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")


def _release_duckdb() -> None:
    """Close dbt-duckdb's database after a build, so that other processes (``ml``) can open the
    file. dbt-duckdb keeps its environment (and the file lock) for the life of the process and
    only drops it at exit; its next build reopens the database from the same environment."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # not the duckdb adapter
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()


def _dbt_exception(result: Any) -> str:
    """dbt's error in one line: its header ("Parsing Error") and the detail lines after it."""
    exc = getattr(result, "exception", None)
    lines = [line.strip() for line in str(exc or "").splitlines() if line.strip()]
    return " ".join(lines[:3])[:500]


def _dbt_nodes(result: Any) -> list[dict[str, Any]]:
    nodes = []
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        node = getattr(r, "node", None)
        nodes.append(
            {
                "unique_id": getattr(node, "unique_id", ""),
                "status": str(getattr(r.status, "value", r.status)),
                "message": str(r.message or ""),
                "execution_time": float(r.execution_time or 0.0),
            }
        )
    return nodes


def _die_with_parent(parent: str | None) -> None:
    """In the worker, first thing: ask Linux to send SIGKILL when the parent (thread) dies (prctl
    PR_SET_PDEATHSIG), and stop now if process ``parent`` already died while the worker started
    (it has another parent then). Without ``parent``, or off Linux, the worker stops at the end of
    its input instead.

    Done here rather than in a ``preexec_fn`` between fork and exec: code run there can deadlock
    on a lock another thread of the parent held at fork time (the replay has MLflow's and the
    scoring pool's threads), and this check closes the window between fork and prctl anyway.
    """
    if not parent:
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        os._exit(1)


@dataclass
class DbtBuild:
    """What one dbt build did."""

    selector: str
    seconds: float
    statuses: dict[str, int]


class DbtSession:
    """Runs the dbt builds of a long operation (``ml replay``, ``ml operate``) on the runtime's
    target, with the vars derived from its settings.

    ``worker``: one dbt process that parses once (DuckDB only: other engines keep no file lock
    to release between builds, and run one ``dbt`` subprocess per build).
    """

    def __init__(self, rt: Runtime, worker: bool, dbt_vars: dict[str, Any] | None = None):
        self.rt = rt
        self.extra_vars = dbt_vars  # beside the settings' (rt.dbt_args)
        self.target_path = rt.dbt_target_path
        self.use_worker = worker and rt.target.type == "duckdb"
        self._process: Any = None
        self._release = threading.Event()  # ends the thread the worker was started from
        self._busy = False  # a request is being served: stopping now interrupts a build

    def _common(self) -> list[str]:
        """Flags of every dbt command (the worker gets them all; run_dbt adds the project,
        profiles, target and target path itself)."""
        dbt = self.rt.settings.dbt
        return [
            *self.rt.dbt_args(self.extra_vars),
            "--log-path",
            str(self.target_path / "logs"),
            "--target",
            self.rt.target.name,
            "--project-dir",
            str(Path(dbt.project_dir).resolve()),
            "--profiles-dir",
            str(Path(dbt.profiles_dir).resolve()),
            "--target-path",
            str(self.target_path),
        ]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(force=self._busy)

    def start(self) -> None:
        """Start the worker and parse the project now (else the first build does it)."""
        if self.use_worker and self._process is None:
            self._start()

    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        import subprocess
        import sys

        self.target_path.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            WORKER_LOG_VARIABLE: str(self.log_file),
            PARENT_VARIABLE: str(os.getpid()),
        }
        started: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._release.clear()

        def parent() -> None:
            # the worker's parent thread: its death signal fires when this thread ends, so it
            # lives until close() (or the process's end), not as long as the caller's thread.
            # A session of its own: Ctrl-C reaches ml, which decides when the worker stops.
            try:
                started.put(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            "from ml.platform.dbt_worker import dbt_worker_main; dbt_worker_main()",
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        cwd=Path(self.rt.settings.dbt.project_dir).resolve(),
                        env=env,
                        text=True,
                        start_new_session=True,
                    )
                )
            except BaseException as exc:
                started.put(exc)
                return
            self._release.wait()

        threading.Thread(target=parent, name="dbt-worker-parent", daemon=True).start()
        process = started.get()
        if isinstance(process, BaseException):
            raise process
        self._process = process
        self._request(["parse", ["parse", *self._common()]], "parse")

    @property
    def log_file(self) -> Path:
        return self.target_path / "dbt-worker.log"

    def close(self, force: bool = False) -> None:
        """Stop the worker: at the end of its input, or at once (``force``: it may be in the
        middle of a build, after an error or Ctrl-C; DuckDB rolls back the unfinished transaction)."""
        import subprocess

        if self._process is None:
            return
        process, self._process = self._process, None
        if not force:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        self._release.set()
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def build(self, selector: str, exclude_resource_types: tuple[str, ...] = ()) -> DbtBuild:
        args = ["build", "--selector", selector]
        if exclude_resource_types:
            args += ["--exclude-resource-type", *exclude_resource_types]
        started = time.perf_counter()
        prepare_target(self.rt.target)  # the DuckDB file's folder, on a fresh clone
        if self.use_worker:
            nodes = self._worker_build([*args, *self._common()])
        else:
            dbt = self.rt.settings.dbt
            result = run_dbt(
                [*args, *self._common()[:4]],
                project_dir=dbt.project_dir,
                profiles_dir=dbt.profiles_dir,
                target=self.rt.target.name,
                target_path=self.target_path,
            )
            nodes = list(result.nodes.values())
        statuses: dict[str, int] = {}
        for node in nodes:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
        return DbtBuild(selector, time.perf_counter() - started, statuses)

    def _worker_build(self, args: list[str]) -> list[dict[str, Any]]:
        if self._process is None:
            self._start()
        return self._request(["invoke", args], " ".join(args[:3]))

    def _request(self, request: list[Any], what: str) -> list[dict[str, Any]]:
        log = self.log_file
        self._busy = True
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.close(force=True)
            raise DbtError(f"the dbt worker stopped during dbt {what}; see {log}")
        self._busy = False
        reply = json.loads(line)
        if not reply["success"]:
            failed = [
                n
                for n in reply.get("nodes", [])
                if n["status"] in ("error", "fail", "runtime error")
            ]
            detail = (
                f"{failed[0]['unique_id']}: {failed[0]['message']}"
                if failed
                else reply.get("error") or f"see {log}"
            )
            raise DbtError(f"dbt {what} failed: {' '.join(detail.split())[:500]}")
        return reply.get("nodes", [])
