"""CI checks of the Databricks target without a workspace: dummy credentials, no network.

* ``dbt parse`` of the whole project against the ``databricks`` target (dbt-databricks);
* ``dbt compile --no-populate-cache --no-introspect`` of every SQL node (the ``spark_sql``
  selector: dbt Python models need a live cluster to compile), twice, with the adapter's
  relation listing answered from the manifest instead of a warehouse: as a first build sees it
  (no relations: incremental models compile their full SQL) and as a later daily run sees it
  (every model exists: the ``is_incremental()`` branches compile; the data tests read the
  latest load's days, dbt var data_tests_scope);
* the compiled models parse as Databricks SQL (sqlfluff, databricks dialect), and the landing
  reads go through ``read_files`` on the configured Unity Catalog volume.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two dbt invocations (~30 s unloaded)

REPO_ROOT = Path(__file__).resolve().parents[2]
LANDING_ROOT = "/Volumes/fraudops_ci/landing/files"
SERVING_LOG_ROOT = "/Volumes/fraudops_ci/serving/log"
DUMMY_ENV = {
    "DATABRICKS_HOST": "dbc-00000000-0000.cloud.databricks.com",
    "DATABRICKS_HTTP_PATH": "/sql/1.0/warehouses/0000000000000000",
    "DATABRICKS_TOKEN": "dapi-not-a-real-token",
    "FRAUDOPS_CATALOG": "fraudops_ci",
    "FRAUDOPS_LANDING_ROOT": LANDING_ROOT,
    "FRAUDOPS_SERVING_LOG_DIR": SERVING_LOG_ROOT,
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}
# dbt in-process, with dbt-databricks' relation listing answered offline: nothing exists yet,
# or (OFFLINE_EXISTING_MANIFEST) every model and seed of that manifest exists as a table.
OFFLINE_DBT = """
import json, os, sys
from dbt.adapters.databricks.impl import DatabricksAdapter
from dbt.cli.main import dbtRunner

tables = {}
if os.environ.get("OFFLINE_EXISTING_MANIFEST"):
    with open(os.environ["OFFLINE_EXISTING_MANIFEST"]) as f:
        for node in json.load(f)["nodes"].values():
            if node["resource_type"] in ("model", "seed"):
                tables.setdefault((node["database"], node["schema"]), []).append(node["alias"])

def list_relations(self, schema_relation):
    key = (schema_relation.database, schema_relation.schema)
    return [self.Relation.create(database=key[0], schema=key[1], identifier=name, type="table")
            for name in tables.get(key, [])]

DatabricksAdapter.list_relations_without_caching = list_relations
sys.exit(0 if dbtRunner().invoke(sys.argv[1:]).success else 1)
"""


def _dbt(
    tmp_path: Path, *args: str, target_dir: str = "target", **extra_env: str
) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBT_")}
    env.update(DUMMY_ENV)
    env.update(extra_env)
    cmd = [
        sys.executable,
        "-c",
        OFFLINE_DBT,
        *args,
        "--project-dir",
        str(REPO_ROOT),
        "--profiles-dir",
        str(REPO_ROOT),
        "--target",
        "databricks",
        "--target-path",
        str(tmp_path / target_dir),
        "--log-path",
        str(tmp_path / "logs"),
    ]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)


COMPILE = ["compile", "--no-populate-cache", "--no-introspect", "--selector", "spark_sql"]


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dbt parse``, then ``dbt compile`` of the SQL nodes for a first build (target/) and for
    an incremental run (target_incremental/), reusing the parse."""
    pytest.importorskip("dbt.adapters.databricks")
    tmp_path = tmp_path_factory.mktemp("databricks-offline")
    parse = _dbt(tmp_path, "parse")
    assert parse.returncode == 0, parse.stdout[-3000:]
    manifest = tmp_path / "parse_manifest.json"
    manifest.write_text((tmp_path / "target" / "manifest.json").read_text())
    (tmp_path / "target_incremental").mkdir()
    shutil.copy(tmp_path / "target" / "partial_parse.msgpack", tmp_path / "target_incremental")
    first = _dbt(tmp_path, *COMPILE)
    assert first.returncode == 0, first.stdout[-3000:]
    # a later run as the daily job runs it: its data tests on the latest load's days
    later = _dbt(
        tmp_path,
        *COMPILE,
        "--vars",
        "{data_tests_scope: latest_load}",
        target_dir="target_incremental",
        OFFLINE_EXISTING_MANIFEST=str(manifest),
    )
    assert later.returncode == 0, later.stdout[-3000:]
    return tmp_path / "target"


def _compiled_models(target: Path) -> list[Path]:
    """Compiled model files (generic data tests compile into folders named after their .yml)."""
    return [
        path
        for path in sorted((target / "compiled" / "fraudops" / "models").rglob("*.sql"))
        if not path.parent.name.endswith(".yml")
    ]


def test_dbt_parse_of_the_whole_project_on_the_databricks_target(target_dir: Path) -> None:
    manifest = json.loads((target_dir.parent / "parse_manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "databricks"
    languages = {
        node["language"] for node in manifest["nodes"].values() if node["resource_type"] == "model"
    }
    assert languages == {"sql", "python"}


def test_python_models_run_on_a_job_cluster_shaped_by_the_bundle(target_dir: Path) -> None:
    # given the databricks target's manifest: the dbt Python models are submitted to a
    # single-node job cluster (dbt_project.yml), not to an all-purpose cluster without an id
    manifest = json.loads((target_dir.parent / "parse_manifest.json").read_text())
    python = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["language"] == "python"
    ]
    assert {node["name"] for node in python} == {"model_performance_daily", "feature_drift_daily"}
    for node in python:
        config = node["config"]
        assert config["submission_method"] == "job_cluster", node["name"]
        cluster = config["job_cluster_config"]
        assert cluster["num_workers"] == 0
        assert cluster["spark_version"] == "17.3.x-cpu-ml-scala2.13"  # the bundle's default
        assert cluster["spark_conf"]["spark.sql.session.timeZone"] == "UTC"
        assert config["packages"]


def test_the_profile_retries_a_starting_warehouse() -> None:
    import yaml

    profile = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text())
    databricks = profile["fraudops"]["outputs"]["databricks"]
    assert databricks["connect_retries"] * databricks["connect_timeout"] >= 120


def test_docs_are_persisted_to_unity_catalog(target_dir: Path) -> None:
    # table and column descriptions become Unity Catalog comments on Databricks (booleans, not
    # the strings "True"/"False" that a Jinja expression could leave); not on the local DuckDB
    # file, where `dbt docs serve` is the place to read them (dbt_project.yml)
    manifest = json.loads((target_dir.parent / "parse_manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert models and all(
        node["config"]["persist_docs"] == {"relation": True, "columns": True} for node in models
    )


def test_every_sql_node_compiles_offline(target_dir: Path) -> None:
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    manifest = json.loads((target_dir / "manifest.json").read_text())
    nodes = manifest["nodes"]

    def needs_a_cluster(uid: str) -> bool:
        """A Python model, or a model reading one (it compiles against the Python model's table,
        which only a live cluster builds)."""
        node = nodes[uid]
        if node["resource_type"] == "model" and node["language"] == "python":
            return True
        parents = node.get("depends_on", {}).get("nodes", [])
        return any(needs_a_cluster(p) for p in parents if p in nodes)

    sql_models = {
        uid
        for uid, node in nodes.items()
        if node["resource_type"] == "model"
        and node["language"] == "sql"
        and not needs_a_cluster(uid)
    }
    compiled_ids = {result["unique_id"] for result in results if result["status"] == "success"}
    assert sql_models <= compiled_ids
    assert any(uid.startswith("test.") for uid in compiled_ids)
    assert all(result["status"] == "success" for result in results)


def test_landing_reads_use_read_files_on_the_volume(target_dir: Path) -> None:
    staging = sorted(
        (target_dir / "compiled" / "fraudops" / "models" / "staging").rglob("stg_*.sql")
    )
    assert staging
    for path in staging:
        sql = path.read_text()
        # the landing files, and the scoring server's inference log (its own volume)
        root = SERVING_LOG_ROOT if path.name.startswith("stg_serving__") else LANDING_ROOT
        assert f"read_files('{root}/" in sql, path.name
        assert "read_parquet" not in sql


def test_incremental_branches_compile_against_the_catalog(target_dir: Path) -> None:
    first = {p.name: p.read_text() for p in _compiled_models(target_dir)}
    later = {
        p.name: p.read_text() for p in _compiled_models(target_dir.parent / "target_incremental")
    }
    assert set(later) == set(first)
    # bronze skips the files it already holds; gold reads itself to find what changed
    assert (
        "`fraudops_ci`.`bronze`.`stg_landing__transactions`"
        in later["stg_landing__transactions.sql"]
    )
    assert (
        "`fraudops_ci`.`bronze`.`stg_landing__transactions`"
        not in first["stg_landing__transactions.sql"]
    )
    assert "`fraudops_ci`.`gold`.`transaction_features`" in later["transaction_features.sql"]


def test_compiled_models_are_databricks_sql(target_dir: Path) -> None:
    from sqlfluff.core import FluffConfig, Linter

    linter = Linter(config=FluffConfig(overrides={"dialect": "databricks", "templater": "raw"}))
    models = _compiled_models(target_dir) + _compiled_models(
        target_dir.parent / "target_incremental"
    )
    assert len(models) >= 20
    unparsable = {
        f"{path.parent.parent.name}/{path.name}": [
            v.desc() for v in linter.parse_string(path.read_text()).violations
        ]
        for path in models
    }
    assert {name: errors for name, errors in unparsable.items() if errors} == {}


def test_the_daily_data_tests_compile_to_databricks_sql_on_the_window(target_dir: Path) -> None:
    from sqlfluff.core import FluffConfig, Linter

    # given the data tests compiled for a daily run (scope latest_load) and for a full build
    def tests(target: Path) -> dict[str, str]:
        folder = target / "compiled" / "fraudops"
        return {
            path.relative_to(folder).as_posix(): path.read_text()
            for path in folder.rglob("*.sql")
            if path.parent.name.endswith(".yml") or "tests" in path.relative_to(folder).parts
        }

    daily, full = tests(target_dir.parent / "target_incremental"), tests(target_dir)
    window = "`fraudops_ci`.`bronze`.`stg_landing__fraud_reports`"
    # then the tests of the day-keyed models read the window, those of a full build do not
    gold_amount = next(name for name in daily if "transaction_features_tx_amount___0" in name)
    assert window in daily[gold_amount] and "tx_date >=" in daily[gold_amount]
    assert window not in full[gold_amount]
    singular = "tests/dbt/test_transaction_features__no_future_dependence.sql"
    assert window in daily[singular] and window not in full[singular]
    # and they are Databricks SQL
    linter = Linter(config=FluffConfig(overrides={"dialect": "databricks", "templater": "raw"}))
    windowed = {name: sql for name, sql in daily.items() if window in sql}
    assert len(windowed) >= 50
    unparsable = {
        name: [v.desc() for v in linter.parse_string(sql).violations]
        for name, sql in windowed.items()
    }
    assert {name: errors for name, errors in unparsable.items() if errors} == {}
