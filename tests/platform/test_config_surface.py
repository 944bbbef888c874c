"""One configuration surface: the settings are the source of truth, and everything that mirrors
them (dbt vars, the gold contract, the scoring sources, the bundle's version pins) agrees."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from ml.platform import tables
from ml.platform.runtime import dbt_vars
from ml.platform.settings import EXTRA_FEATURES, FEATURES, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _yaml(path: str) -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / path).read_text()) or {}


def test_every_dbt_var_that_mirrors_a_setting_has_its_default():
    # given the dbt project's declared defaults (plain `dbt build` uses them)
    declared = _yaml("dbt_project.yml")["vars"]
    # when the vars are derived from the default settings
    derived = dbt_vars(load_settings())
    # then they name only declared vars, and each default is the setting's
    assert set(derived) <= set(declared)
    for name, value in derived.items():
        if name == "landing_root":  # an env_var() with the same default as the setting
            assert "FRAUDOPS_LANDING_ROOT" in declared[name] and "data/landing" in declared[name]
            continue
        if name == "serving_log_root":  # the same, for the scoring server's inference log
            assert "FRAUDOPS_SERVING_LOG_DIR" in declared[name] and "data/serving" in declared[name]
            continue
        assert declared[name] == value, f"dbt var {name}: {declared[name]!r} != setting {value!r}"


def test_settings_change_the_dbt_vars():
    settings = load_settings(training={"delay_days": 5}, model={"top_k_cards": 50})
    assert dbt_vars(settings)["label_maturity_days"] == 5
    assert dbt_vars(settings)["card_precision_k"] == 50


def test_the_model_features_are_columns_of_the_gold_contract():
    fraud = _yaml("models/marts/fraud/_fraud__models.yml")
    (gold,) = [m for m in fraud["models"] if m["name"] == tables.FEATURES.split(".")[-1]]
    assert gold["config"]["contract"]["enforced"] is True
    columns = {c["name"] for c in gold["columns"]}
    assert set(load_settings().model.features) <= columns
    assert set(FEATURES) | set(EXTRA_FEATURES) <= columns


def test_the_scoring_sources_are_the_tables_ml_writes():
    (source,) = _yaml("models/marts/monitoring/_scoring__sources.yml")["sources"]
    declared = {f"{source['schema']}.{t['name']}" for t in source["tables"]}
    assert {
        tables.PREDICTIONS,
        tables.FEATURE_REFERENCE,
        tables.FEATURE_REFERENCE_SAMPLE,
    } <= declared
    assert source["name"] == tables.SCORING_SCHEMA


def test_the_gold_models_ml_reads_exist():
    models = {p.stem for p in (REPO_ROOT / "models").rglob("*.sql")} | {
        p.stem for p in (REPO_ROOT / "models").rglob("*.py")
    }
    for relation in (
        tables.FEATURES,
        tables.PERFORMANCE,
        tables.DRIFT,
        tables.ALERTS,
        tables.LATEST_PREDICTIONS,
    ):
        assert relation.split(".")[-1] in models, relation
    for relation in (tables.TRANSACTIONS, tables.FRAUD_REPORTS):
        assert relation.split(".")[-1] in models, relation


def _locked() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text()
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, re.M)
    }


def _bundle_pins() -> list[str]:
    """Every ``package:`` requirement in databricks.yml and resources/*.yml."""
    texts = [REPO_ROOT / "databricks.yml", *sorted((REPO_ROOT / "resources").glob("*.yml"))]
    return [
        m.group(1).strip().strip("\"'")
        for p in texts
        for m in re.finditer(r"package:\s*(\S+)", p.read_text())
    ]


def test_the_bundle_pins_what_the_lock_file_installs():
    locked = _locked()
    pins = _bundle_pins()
    assert pins, "the bundle installs no PyPI package: update this test"
    for pin in pins:
        requirement = Requirement(pin)
        name = re.sub(r"\[.*\]", "", requirement.name).lower()
        assert name in locked, f"{pin}: {name} is not in requirements.lock"
        assert str(requirement.specifier) == f"=={locked[name]}", (
            f"{pin}: requirements.lock has {name}=={locked[name]}"
        )


@pytest.mark.parametrize("pin", _bundle_pins())
def test_each_bundle_pin_satisfies_pyproject(pin: str):
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = [
        *pyproject["dependencies"],
        *(d for extra in pyproject["optional-dependencies"].values() for d in extra),
    ]
    requirement = Requirement(pin)
    version = str(requirement.specifier).removeprefix("==")
    matching = [
        Requirement(d) for d in declared if Requirement(d).name.lower() == requirement.name.lower()
    ]
    assert matching, f"{requirement.name} is not a dependency in pyproject.toml"
    assert all(m.specifier.contains(version) for m in matching)
