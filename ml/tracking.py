"""MLflow set-up and lineage tags, shared by train / evaluate / validate / promote.

URIs come from settings (``mlflow.tracking_uri``, ``mlflow.registry_uri``), so the same code
tracks to a local SQLite file or to Databricks (``databricks``, ``databricks-uc``). Nothing
happens at import time: call :func:`configure`, which

* makes a relative ``sqlite:///`` path absolute and creates its directory,
* sets the tracking and registry URIs,
* creates the experiment (with ``mlflow.artifact_location``) if it does not exist,
* turns an unreachable store into one :class:`TrackingError` line.

:func:`lineage_tags` returns the git commit of the project and the dbt invocation that last
built the warehouse (``target/run_results.json``), to tag runs and model versions with.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from ml.errors import FraudopsError
from ml.settings import Settings

FEATURE_TABLE_MODEL = "transaction_features"


class TrackingError(FraudopsError):
    """The MLflow tracking store or model registry cannot be reached or used."""


def _local_sqlite(uri: str, base: Path) -> str:
    """``sqlite:///relative.db`` -> absolute path URI (and create the directory)."""
    path = Path(uri[len("sqlite:///") :])
    if not path.is_absolute():
        path = base / path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(f"cannot create the MLflow store directory {path.parent}: {exc.strerror}") from None
    return f"sqlite:///{path}"


def resolve_tracking_uri(uri: str, base: Path | None = None) -> str:
    """The tracking URI with a local SQLite path made absolute (its directory created)."""
    if uri.startswith("sqlite:///"):
        return _local_sqlite(uri, base or Path.cwd())
    return uri


def resolve_artifact_location(location: str | None, tracking_uri: str, base: Path | None = None) -> str | None:
    """A relative local artifact folder as a ``file://`` URI; ``None`` on remote trackers
    (Databricks chooses the artifact store itself)."""
    if location is None or not tracking_uri.startswith(("sqlite:", "file:", "/")):
        return None
    if urlparse(location).scheme:
        return location
    path = Path(location)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.resolve().as_uri()


def configure(settings: Settings) -> str:
    """Point MLflow at the configured stores and return the experiment id (created if needed)."""
    import mlflow
    from mlflow import MlflowClient

    tracking_uri = resolve_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    registry_uri = settings.mlflow.registry_uri
    if registry_uri:
        registry_uri = resolve_tracking_uri(registry_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    name = settings.mlflow.experiment
    try:
        client = MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = client.create_experiment(
                name, artifact_location=resolve_artifact_location(settings.mlflow.artifact_location, tracking_uri)
            )
        elif experiment.lifecycle_stage == "deleted":
            raise TrackingError(f"MLflow experiment {name!r} is deleted; restore it or set mlflow.experiment")
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any store/driver/network error becomes one line
        raise TrackingError(
            f"MLflow tracking store {settings.mlflow.tracking_uri} is unreachable ({first_line(exc)}); "
            "check mlflow.tracking_uri"
        ) from None
    return experiment_id


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (for one-line errors)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


_first_line = first_line  # kept for callers that imported the private name


def git_commit(project_dir: Path | str) -> dict[str, str]:
    """``git_commit`` (HEAD) and ``git_dirty`` of the repository holding ``project_dir``; {} outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10, check=False
        )
        if head.returncode != 0:
            return {}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": str(bool(status.stdout.strip())).lower()}


def dbt_target_path(settings: Settings, target_path: Path | str | None = None) -> Path:
    """Where dbt wrote its artifacts: ``target_path``, else ``$DBT_TARGET_PATH``, else
    ``<dbt.project_dir>/target``."""
    if target_path:
        return Path(target_path)
    if os.environ.get("DBT_TARGET_PATH"):
        return Path(os.environ["DBT_TARGET_PATH"])
    return Path(settings.dbt.project_dir) / "target"


def dbt_invocation(settings: Settings, target_path: Path | str | None = None) -> dict[str, str]:
    """Tags naming the dbt invocation that wrote ``run_results.json`` ({} if there is none).

    ``dbt_invocation_id`` and ``dbt_generated_at`` come from the file's metadata;
    ``dbt_built_feature_table`` says whether that invocation (re)built the feature table.
    """
    results_file = dbt_target_path(settings, target_path) / "run_results.json"
    try:
        results = json.loads(results_file.read_text())
    except (OSError, ValueError):
        return {}
    metadata = results.get("metadata", {})
    if not metadata.get("invocation_id"):
        return {}
    table = settings.model.feature_table.split(".")[-1] or FEATURE_TABLE_MODEL
    built = any(
        r.get("unique_id", "").startswith("model.") and r["unique_id"].endswith(f".{table}") and r.get("status") == "success"
        for r in results.get("results", [])
    )
    return {
        "dbt_invocation_id": str(metadata["invocation_id"]),
        "dbt_generated_at": str(metadata.get("generated_at", "")),
        "dbt_built_feature_table": str(built).lower(),
    }


def lineage_tags(settings: Settings, dbt_target: Path | str | None = None) -> dict[str, str]:
    """Git commit + dbt invocation tags for a run or model version."""
    return {**git_commit(settings.dbt.project_dir), **dbt_invocation(settings, dbt_target)}
