"""The Databricks App of the scoring server (resources/fraudops_app.yml, app.yaml) points at
things that exist: its source folder holds app.yaml and requirements.txt, app.yaml runs a
registered `ml` command with known options, every FRAUDOPS__ variable is a setting with a valid
value, every valueFrom names a resource of the app. No workspace needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from ml.cli import app as ml_app
from ml.platform.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCE = REPO_ROOT / "resources" / "fraudops_app.yml"


@pytest.fixture(scope="module")
def serving_app() -> dict[str, Any]:
    apps = yaml.safe_load(RESOURCE.read_text())["resources"]["apps"]
    assert list(apps) == ["fraudops_serving"]
    return apps["fraudops_serving"]


@pytest.fixture(scope="module")
def app_yaml(serving_app: dict[str, Any]) -> dict[str, Any]:
    source = (RESOURCE.parent / serving_app["source_code_path"]).resolve()
    assert (source / "app.yaml").is_file() and (source / "requirements.txt").is_file()
    return yaml.safe_load((source / "app.yaml").read_text())


def test_the_bundle_includes_the_app_resource() -> None:
    bundle = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
    assert any(RESOURCE in set(REPO_ROOT.glob(p)) for p in bundle["include"])
    declared = set(bundle["variables"])
    assert set(re.findall(r"\$\{var\.([a-z_]+)\}", RESOURCE.read_text())) <= declared


def test_the_app_runs_ml_serve_on_the_databricks_target(app_yaml: dict[str, Any]) -> None:
    command = app_yaml["command"]
    assert command[:2] == ["ml", "serve"]
    serve = typer.main.get_command(ml_app).commands["serve"]
    options = {opt for param in serve.params for opt in param.opts}
    assert all(arg in options for arg in command[2:] if arg.startswith("--"))
    assert command[command.index("--target") + 1] == "databricks"


def test_the_app_settings_are_settings(
    app_yaml: dict[str, Any], serving_app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given app.yaml's environment (values from resources stand in as placeholders)
    resources = {resource["name"] for resource in serving_app["resources"]}
    for variable in app_yaml["env"]:
        if "valueFrom" in variable:
            assert variable["valueFrom"] in resources, variable
            continue
        monkeypatch.setenv(variable["name"], str(variable["value"]))
    # then the settings load with them (an unknown FRAUDOPS__ key or a bad value fails)
    settings = load_settings()
    assert settings.serving.bootstrap == "databricks_sql"
    assert settings.serving.host == "0.0.0.0"
    assert settings.mlflow.registry_uri == "databricks-uc"


def test_requirements_install_the_lock_and_the_package() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-r requirements.lock", "."]
