"""Jinja context for sqlfluff's offline templater: dbt's ``var()`` with the project's real values.

sqlfluff's dbt-builtins emulator returns placeholder strings for ``var()``, which breaks models that
loop over list vars (feature windows). This reads the ``vars:`` of dbt_project.yml instead.
"""

from pathlib import Path

import yaml

_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project.yml"
_VARS = (yaml.safe_load(_PROJECT.read_text()) or {}).get("vars", {})


def var(name, default=None):
    value = _VARS.get(name, default)
    return name if value is None else value


def transaction_features_config():
    """The Databricks rendering of macros/transaction_features_config.sql (a dict of configs)."""
    return {"materialized": "incremental", "incremental_strategy": "merge"}


def landing_verdicts_config():
    """The Databricks rendering of macros/landing_verdicts_config.sql."""
    return {"materialized": "incremental", "incremental_strategy": "delete+insert"}


def landing_filter_config():
    """The Databricks rendering of macros/landing_filter_config.sql."""
    return {"materialized": "view"}


def fraud_kpis_daily_config():
    """The Databricks rendering of macros/fraud_kpis_daily_config.sql."""
    return {"materialized": "incremental", "incremental_strategy": "merge"}
