"""Shared helpers for the Spark tests (import the fixtures into a test module to use them).

* ``spark`` — one local PySpark session per test process (pytest-xdist worker), built like the
  dbt ``spark`` target (Hive metastore + parquet warehouse, under a tmp dir), with
  ``spark.sql.shuffle.partitions=2``. Skips when pyspark or Java is missing.
* :class:`StandInDbt` — the ``dbt`` object a dbt Python model receives, engine-agnostic: ``ref`` and
  ``source`` hand out whatever relations/DataFrames the test supplies (DuckDB relations as
  dbt-duckdb does, PySpark DataFrames as dbt-spark / dbt-databricks do).
* :func:`load_python_model` — import a dbt Python model file as a module (dbt compiles it the same way).
* :func:`spark_env` — environment for running dbt / ``ml`` against the ``spark`` target in a tmp dir.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHUFFLE_PARTITIONS = "2"


def spark_env(base: Path, landing_root: Path | None = None) -> dict[str, str]:
    """Environment variables that put the ``spark`` target's metastore and warehouse under ``base``."""
    env = {
        "FRAUDOPS_SPARK_DIR": str(base / "spark"),
        "FRAUDOPS_SPARK_SHUFFLE_PARTITIONS": SHUFFLE_PARTITIONS,
        "FRAUDOPS_SPARK_DRIVER_MEMORY": "2g",
        # Spark's "hostname resolves to a loopback address" warning, and no reverse DNS lookups
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    if landing_root is not None:
        env["FRAUDOPS_LANDING_ROOT"] = str(landing_root)
    return env


def local_spark_target(base: Path) -> Any:
    """The dbt ``spark`` target of profiles.yml, resolved with its folders under ``base``."""
    from ml.settings import load_settings
    from ml.warehouse import resolve_target

    saved = {key: os.environ.get(key) for key in spark_env(base)}
    os.environ.update(spark_env(base))
    try:
        settings = load_settings(dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)})
        return resolve_target(settings, "spark")
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


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local SparkSession configured like the dbt ``spark`` target, shared by the process."""
    skip_without_spark()
    from pyspark.sql import SparkSession

    from ml.warehouse import local_spark_conf

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
