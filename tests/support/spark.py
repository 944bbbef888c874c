"""Shared helpers for the Spark tests (the ``spark`` fixture of tests/conftest.py calls spark_session).

* ``spark`` — one local PySpark session per test process (pytest-xdist worker), built like the
  dbt ``spark`` target (Hive metastore + parquet warehouse, under a tmp dir), with
  ``spark.sql.shuffle.partitions=2``. Skips when pyspark or Java is missing.
* :class:`StandInDbt` — the ``dbt`` object a dbt Python model receives, engine-agnostic: ``ref`` and
  ``source`` hand out whatever relations/DataFrames the test supplies (DuckDB relations as
  dbt-duckdb does, PySpark DataFrames as dbt-spark / dbt-databricks do).
* :func:`load_python_model` — import a dbt Python model file as a module (dbt compiles it the same way).
* :func:`spark_env` — environment for running dbt / ``ml`` against the ``spark`` target in a tmp dir.
* :class:`SparkDbtWorker` — one dbt process (one JVM, one parse) serving several dbt commands
  against the ``spark`` target, one after the other.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHUFFLE_PARTITIONS = "2"
#: dbt threads for builds on the local ``spark`` target (profiles.yml has 1). Each node is a small
#: Spark job whose time is mostly driver-side planning and scheduling, so nodes overlap well; the
#: DAG (and so what is built and tested) does not depend on the thread count.
SPARK_DBT_THREADS = "4"


def spark_env(base: Path, landing_root: Path | None = None) -> dict[str, str]:
    """Environment variables that put the ``spark`` target's metastore and warehouse under ``base``."""
    env = {
        "FRAUDOPS_SPARK_DIR": str(base / "spark"),
        "FRAUDOPS_SPARK_SHUFFLE_PARTITIONS": SHUFFLE_PARTITIONS,
        "FRAUDOPS_SPARK_DRIVER_MEMORY": "2g",
        # Spark's "hostname resolves to a loopback address" warning, and no reverse DNS lookups
        "SPARK_LOCAL_IP": "127.0.0.1",
        # the serving log the `serving` models read: no folder yet, as on a fresh clone before
        # any server ran (the source is then a table with no rows, macros/read_serving_log.sql)
        "FRAUDOPS_SERVING_LOG_DIR": str(base / "serving"),
    }
    if landing_root is not None:
        env["FRAUDOPS_LANDING_ROOT"] = str(landing_root)
    return env


def local_spark_target(base: Path) -> Any:
    """The dbt ``spark`` target of profiles.yml, resolved with its folders under ``base``."""
    from ml.platform.settings import load_settings
    from ml.platform.targets import resolve_target

    saved = {key: os.environ.get(key) for key in spark_env(base)}
    os.environ.update(spark_env(base))
    try:
        settings = load_settings(
            dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)}
        )
        return resolve_target(settings.dbt, "spark")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def skip_without_spark() -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)")


def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local SparkSession configured like the dbt ``spark`` target, shared by the process."""
    skip_without_spark()
    from pyspark.sql import SparkSession

    from ml.platform.warehouse import local_spark_conf

    base = tmp_path_factory.mktemp("spark-session")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("fraudops-tests").enableHiveSupport()
    for key, value in local_spark_conf(local_spark_target(base)).items():
        builder = builder.config(key, value)
    session = builder.config("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def load_python_model(path: Path) -> ModuleType:
    """Import a dbt Python model file as a module (no dbt involved)."""
    spec = importlib.util.spec_from_file_location(f"dbt_python_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandInConfig:
    """``dbt.config``: callable (the model's own config call), with ``get`` and ``meta_get``."""

    def __init__(self, meta: dict[str, Any] | None = None):
        self.meta = dict(meta or {})
        self.called_with: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        self.called_with.update(kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self.called_with.get(key, default)

    def meta_get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


class StandInDbt:
    """The ``dbt`` argument of ``model(dbt, session)``.

    ``relation(name)`` returns the engine's relation for ``ref(name)`` or, with a dot,
    ``source(source_name, table)`` (``"scoring.predictions"``); ``this`` is the model's own
    relation name on an incremental run (``None``: first run).
    """

    def __init__(
        self,
        relation: Callable[[str], Any],
        *,
        this: str | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self._relation = relation
        self.this = this
        self.is_incremental = this is not None
        self.config = StandInConfig(meta)

    def ref(self, name: str) -> Any:
        return self._relation(name)

    def source(self, source_name: str, table: str) -> Any:
        return self._relation(f"{source_name}.{table}")


class SparkDbtWorker:
    """One dbt process serving several dbt commands against the ``spark`` target.

    dbt-spark's ``session`` method starts a JVM (Spark + the embedded Derby metastore, ~45 s on a
    busy 2-core machine) in every dbt process and never stops it; this worker parses the project
    once and runs every command in the same process (ml.replay's dbt worker protocol), so the
    JVM starts once. Each command's ``run_results.json`` is read from ``target_path`` after it.
    Close it (context manager) before anything else opens the metastore: embedded Derby allows
    one JVM at a time.
    """

    def __init__(self, env: dict[str, str], target_path: Path, log_path: Path):
        self.target_path = target_path
        self.log_path = log_path
        log_path.mkdir(parents=True, exist_ok=True)
        target_path.mkdir(parents=True, exist_ok=True)
        self.log_file = log_path / "spark-dbt-worker.log"
        self.common = [
            "--project-dir",
            str(REPO_ROOT),
            "--profiles-dir",
            str(REPO_ROOT),
            "--target",
            "spark",
            "--target-path",
            str(target_path),
            "--log-path",
            str(log_path),
        ]
        full_env = {
            **os.environ,
            **env,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "FRAUDOPS_REPLAY_DBT_LOG": str(self.log_file),
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ml.platform.dbt_worker import dbt_worker_main; dbt_worker_main()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=full_env,
            text=True,
        )
        # the parse reply is read by the first command, so that the caller goes on meanwhile
        self._send(["parse", ["parse", *self.common]])
        self._parsed = False

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    def _send(self, request: list[Any]) -> None:
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()

    def _reply(self, what: list[str]) -> dict[str, Any]:
        line = self._process.stdout.readline()
        assert line, (
            f"the spark dbt worker stopped during dbt {' '.join(what[:3])}:\n{self.log_tail()}"
        )
        return json.loads(line)

    def invoke(self, *args: str) -> tuple[int, str, dict[str, Any] | None]:
        """(return code, the log's tail, run_results.json) of ``dbt <args>``."""
        if not self._parsed:
            reply = self._reply(["parse"])
            assert reply["success"], (
                f"dbt parse on spark failed: {reply.get('error')}\n{self.log_tail()}"
            )
            self._parsed = True
        results_file = self.target_path / "run_results.json"
        results_file.unlink(missing_ok=True)
        self._send(["invoke", [*args, *self.common]])
        reply = self._reply(list(args))
        run_results = json.loads(results_file.read_text()) if results_file.exists() else None
        return (
            (0 if reply["success"] else 1),
            f"{reply.get('error') or ''}\n{self.log_tail()}",
            run_results,
        )

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._process.terminate()
                self._process.wait(timeout=30)
        self._process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
