"""Databricks job task values: how one task of the daily job tells the next ones what it decided.

``ml operate`` sets ``retrain`` (``true``/``false``) and ``alerts`` (the monitoring alerts that
hold, or ``none``); condition tasks of the job (resources/fraudops_job.yml) read them as
``{{tasks.operate.values.retrain}}``. Outside a Databricks job this does nothing.
"""

from __future__ import annotations

import contextlib
import os


def in_databricks_job() -> bool:
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def set_task_values(**values: str) -> bool:
    """Set the task values of the running Databricks task; False when not in a job."""
    if not in_databricks_job():
        return False
    with contextlib.suppress(ImportError):
        from databricks.sdk.runtime import dbutils  # the cluster's dbutils

        for key, value in values.items():
            dbutils.jobs.taskValues.set(key=key, value=value)
        return True
    return False
