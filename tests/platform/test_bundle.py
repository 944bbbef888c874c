"""The Databricks Asset Bundle points at things that exist: `ml` commands and options registered
in the typer app, dbt selectors that select nodes, the wheel that pyproject builds, the dbt target
and the Unity Catalog names that `ml` derives. No workspace needed."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from ml.cli import app
from ml.operations.daily import DAILY_SELECTORS
from ml.operations.operate import TASK_VALUES
from ml.platform.dbt import run_dbt
from ml.platform.mlflow_store import mlflow_locations
from ml.platform.settings import load_settings
from ml.platform.warehouse import Target

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDER = ["operate", "retraining_due", "retrain", "alerts_holding", "monitoring_alert"]


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    """databricks.yml with its included resource files merged in."""
    root = _load(REPO_ROOT / "databricks.yml")
    root.setdefault("resources", {})
    for pattern in root.get("include", []):
        for path in sorted(REPO_ROOT.glob(pattern)):
            part = _load(path)
            for kind, items in part.get("resources", {}).items():
                root["resources"].setdefault(kind, {}).update(items)
            for name, target in part.get("targets", {}).items():
                root["targets"].setdefault(name, {}).setdefault("resources", {}).update(
                    target.get("resources", {})
                )
    return root


@pytest.fixture(scope="module")
def job(bundle: dict[str, Any]) -> dict[str, Any]:
    jobs = bundle["resources"]["jobs"]
    assert list(jobs) == ["fraudops_daily"]
    return jobs["fraudops_daily"]


@pytest.fixture(scope="module")
def tasks(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["task_key"]: task for task in job["tasks"]}


def _commands() -> dict[str, Any]:
    """The click commands typer builds from the `ml` app (whatever is registered right now)."""
    return typer.main.get_command(app).commands


def test_targets_have_their_own_catalog(bundle: dict[str, Any]) -> None:
    targets = bundle["targets"]
    assert set(targets) == {"dev", "staging", "prod"}
    catalogs = [targets[name]["variables"]["catalog"] for name in targets]
    assert len(set(catalogs)) == 3
    assert targets["prod"]["mode"] == "production"
    assert [name for name, target in targets.items() if target.get("default")] == ["dev"]
    # every ${var.x} used anywhere is declared
    declared = set(bundle["variables"])
    text = "\n".join(
        p.read_text() for p in [REPO_ROOT / "databricks.yml", *REPO_ROOT.glob("resources/*.yml")]
    )
    assert set(re.findall(r"\$\{var\.([a-z_]+)\}", text)) <= declared


def test_the_job_operates_the_day_then_retrains_and_alerts_when_told(
    job: dict[str, Any], tasks: dict[str, dict]
) -> None:
    # given the daily job: ml operate first, then the tasks its decisions gate
    assert list(tasks) == ORDER
    for task in tasks.values():
        for dependency in task.get("depends_on", []):
            assert ORDER.index(dependency["task_key"]) < ORDER.index(task["task_key"])
    operate = tasks["operate"]["python_wheel_task"]["parameters"]
    assert operate[0] == "operate" and "--defer-retraining" in operate
    # retraining runs only when the policies said so (a task value ml operate sets) ...
    gate = tasks["retraining_due"]["condition_task"]
    assert gate["left"] == "{{tasks.operate.values." + TASK_VALUES["retrain"][0] + "}}"
    assert (gate["op"], gate["right"]) == ("EQUAL_TO", "true")
    assert tasks["retrain"]["depends_on"] == [{"task_key": "retraining_due", "outcome": "true"}]
    assert tasks["retrain"]["python_wheel_task"]["parameters"][0] == "retrain"
    # ... and the on-call hears of drift / performance alerts, and of any failure
    alerts = tasks["alerts_holding"]["condition_task"]
    assert alerts["left"] == "{{tasks.operate.values." + TASK_VALUES["alerts"][0] + "}}"
    assert (alerts["op"], alerts["right"]) == ("NOT_EQUAL", TASK_VALUES["alerts"][1])
    notify = tasks["monitoring_alert"]
    assert notify["depends_on"] == [{"task_key": "alerts_holding", "outcome": "true"}]
    assert notify["email_notifications"]["on_success"] == ["${var.alert_email}"]
    assert job["email_notifications"]["on_failure"] == ["${var.alert_email}"]
    # the report goes to a Unity Catalog volume
    output = notify["python_wheel_task"]["parameters"]
    assert output[output.index("--output") + 1].startswith("/Volumes/${var.catalog}/")
    assert job["schedule"]["quartz_cron_expression"].split()[0:3] == ["0", "0", "6"]
    assert job["max_concurrent_runs"] == 1


def test_the_task_values_are_those_ml_operate_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a Databricks job's dbutils (recorded)
    import sys
    import types

    recorded: dict[str, str] = {}
    task_values = types.SimpleNamespace(set=lambda key, value: recorded.__setitem__(key, value))
    runtime = types.ModuleType("databricks.sdk.runtime")
    runtime.dbutils = types.SimpleNamespace(jobs=types.SimpleNamespace(taskValues=task_values))
    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", runtime)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    # when ml operate publishes a day's decisions
    from ml.operations.operate import operate, publish_decisions

    publish_decisions(retraining_due=["scheduled"], alerts=[])
    # then the condition tasks' keys are set with the values they compare
    assert recorded[TASK_VALUES["retrain"][0]] == "true"
    assert recorded[TASK_VALUES["alerts"][0]] == TASK_VALUES["alerts"][1]
    # and a rerun of a completed day sets them again from its day_completed event
    recorded.clear()
    log = types.SimpleNamespace(load=lambda: None, completed=lambda: (None, None))
    done = {"details": {"retraining_due": [], "alerts_holding": ["drift_alert"]}}
    operator = types.SimpleNamespace(log=log, day_events=lambda day: {"day_completed": done})
    monkeypatch.setattr("ml.operations.operate.Operator", lambda rt, on_step=None: operator)
    monkeypatch.setattr("ml.operations.operate.feed_status", lambda root, day: [])
    rt = types.SimpleNamespace(
        settings=types.SimpleNamespace(landing=types.SimpleNamespace(root="."))
    )
    assert operate(rt, dt.date(2018, 5, 1)).already_done
    assert recorded == {"retrain": "false", "alerts": "drift_alert"}


def test_wheel_tasks_call_registered_ml_commands_with_known_options(tasks: dict[str, dict]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    commands = _commands()
    wheel_tasks = [task for task in tasks.values() if "python_wheel_task" in task]
    assert [task["python_wheel_task"]["parameters"][0] for task in wheel_tasks] == [
        "operate",
        "retrain",
        "report",
    ]
    for task in wheel_tasks:
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == pyproject["project"]["name"]
        assert wheel["entry_point"] in pyproject["project"]["scripts"]
        name, *args = wheel["parameters"]
        assert name in commands, (
            f"`ml {name}` is not a registered command (have: {sorted(commands)})"
        )
        options = {opt for param in commands[name].params for opt in param.opts}
        for arg in args:
            if arg.startswith("--"):
                assert arg in options, f"`ml {name}` has no option {arg}"
        assert args[args.index("--target") + 1] == "databricks"
        assert task["libraries"][0] == {"whl": "../dist/*.whl"}
    # the tasks that run dbt (operate: builds; retrain: nothing, but ml imports it) install the pin
    for key in ("operate", "retrain"):
        assert any("pypi" in lib for lib in tasks[key]["libraries"]), key


@pytest.mark.slow
def test_the_selectors_ml_operate_builds_select_nodes(tmp_path: Path) -> None:
    # the selectors the daily operation builds (ml/operations/daily.py) exist and select nodes
    selectors = {s["name"] for s in _load(REPO_ROOT / "selectors.yml")["selectors"]}
    assert set(DAILY_SELECTORS) <= selectors
    profiles = _load(REPO_ROOT / "profiles.yml")["fraudops"]["outputs"]
    assert profiles["databricks"]["type"] == "databricks"
    assert profiles["databricks"]["connect_retries"] >= 3
    assert profiles["databricks"]["connect_timeout"] > 0
    selected = {}
    for selector in DAILY_SELECTORS:
        result = run_dbt(
            [
                "ls",
                "--selector",
                selector,
                "--output",
                "json",
                "--output-keys",
                "unique_id",
                "-q",
                "--log-path",
                str(tmp_path / "logs"),
            ],
            project_dir=REPO_ROOT,
            target_path=tmp_path / selector,
        )
        selected[selector] = {
            json.loads(line)["unique_id"]
            for line in result.stdout.splitlines()
            if line.startswith("{")
        }
    medallion, downstream = (selected[s] for s in DAILY_SELECTORS)
    assert "model.fraudops.transaction_features" in medallion
    assert "model.fraudops.fraud_alerts" in downstream
    assert not {uid for uid in medallion & downstream if uid.startswith("model.")}


def test_job_cluster_configures_the_dbt_target_and_ml(job: dict[str, Any]) -> None:
    (cluster,) = job["job_clusters"]
    env = cluster["new_cluster"]["spark_env_vars"]
    assert env["FRAUDOPS_TARGET"] == "databricks"
    assert env["FRAUDOPS_CATALOG"] == "${var.catalog}"
    assert env["DATABRICKS_HTTP_PATH"].endswith("${var.warehouse_id}")
    assert env["FRAUDOPS_LANDING_ROOT"].startswith("/Volumes/${var.catalog}/")
    assert env["FRAUDOPS__DBT__PROFILES_DIR"] == "/Workspace${workspace.file_path}"
    assert env["FRAUDOPS__OPERATE__REPORT"].startswith("/Volumes/${var.catalog}/")
    # the dbt Python models' job cluster is shaped by the bundle's variables
    assert env["FRAUDOPS_PY_SPARK_VERSION"] == "${var.spark_version}"
    assert env["FRAUDOPS_PY_NODE_TYPE"] == "${var.node_type_id}"
    # the databricks profile finds what it reads: set here, injected by the dbt task, or a
    # local-only fallback / optional value
    databricks = (REPO_ROOT / "profiles.yml").read_text().split("    databricks:")[1]
    read = set(re.findall(r"env_var\('([A-Z_]+)'", databricks))
    injected = {"DBT_HOST", "DBT_ACCESS_TOKEN"}  # by a dbt_task, if one runs dbt directly
    local_only = {"FRAUDOPS_SCHEMA"}
    assert env["DATABRICKS_TOKEN"].startswith("{{secrets/")
    assert {"DATABRICKS_HTTP_PATH", "FRAUDOPS_CATALOG"} <= read & set(env)
    assert read <= set(env) | injected | local_only


def test_registered_model_matches_the_name_ml_derives(
    bundle: dict[str, Any], tmp_path: Path
) -> None:
    settings = load_settings()
    for name in ("staging", "prod"):
        target = bundle["targets"][name]
        model = target["resources"]["registered_models"]["fraud_detector"]
        catalog = target["variables"]["catalog"]
        derived = mlflow_locations(
            settings, Target("databricks", "databricks", {"catalog": catalog}, tmp_path)
        )
        assert f"{catalog}.{model['schema_name']}.{model['name']}" == derived.model_name
        assert model["catalog_name"] == "${var.catalog}"
        experiment = target["resources"]["experiments"]["fraudops"]
        assert experiment["name"] == "${var.experiment_name}"
        assert target["variables"]["experiment_name"].startswith("/")
