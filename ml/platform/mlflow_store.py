"""MLflow locations and set-up: one place that knows where runs and models live.

Locations are derived from the dbt target, so that one ``--target`` switches both halves. On a
``databricks`` target (dbt-databricks, Unity Catalog):

* tracking URI ``databricks`` (the workspace's MLflow tracking server),
* registry URI ``databricks-uc`` (models in Unity Catalog),
* a three-part model name ``<catalog>.<schema>.<model.name>``: the target's catalog and the schema
  ``ml`` writes to (``scoring``, ml/platform/tables.py), so the model
  lives next to its predictions and one set of grants covers both,
* the experiment as a workspace path: ``mlflow.experiment`` if it is one already (the bundle's job
  passes ``FRAUDOPS__MLFLOW__EXPERIMENT``), else ``/Shared/<mlflow.experiment>``,
* no local artifact location (Databricks picks the artifact store).

Other targets (``local`` DuckDB, ``spark``) keep the settings as they are (local SQLite by default).
Values set explicitly to something that is not a local store win: a ``databricks`` target with
``mlflow.tracking_uri: databricks://my-profile`` keeps that URI.

Nothing happens at import time: :func:`configure` (called by ``Runtime.configure_mlflow``)

* makes a relative ``sqlite:///`` path absolute and creates its directory,
* sets the tracking and registry URIs,
* creates the experiment (with ``mlflow.artifact_location``) if it does not exist,
* turns an unreachable store into one :class:`TrackingError` line.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ml.platform.errors import ConfigError, TrackingError, first_line
from ml.platform.settings import Settings
from ml.platform.tables import SCORING_SCHEMA
from ml.platform.targets import Target

DATABRICKS_TRACKING_URI = "databricks"
DATABRICKS_REGISTRY_URI = "databricks-uc"
SHARED_FOLDER = "/Shared"
_LOCAL_SCHEMES = ("sqlite:", "file:", "/", "./", "mlruns")


@dataclass(frozen=True)
class MlflowLocations:
    """Where runs are tracked and models are registered for one target."""

    tracking_uri: str
    registry_uri: str | None
    experiment: str
    model_name: str
    artifact_location: str | None


def _is_local(uri: str | None) -> bool:
    return uri is None or uri.startswith(_LOCAL_SCHEMES)


def uc_model_name(catalog: str, schema: str, name: str) -> str:
    """``catalog.schema.name`` (a name that already has three parts is returned as is)."""
    if name.count(".") == 2:
        return name
    if "." in name:
        raise ConfigError(f"model.name {name!r} must be a bare name or catalog.schema.name")
    if not catalog or not schema:
        raise ConfigError("a Unity Catalog model name needs the target's catalog and schema")
    return f"{catalog}.{schema}.{name}"


def mlflow_locations(settings: Settings, target: Target) -> MlflowLocations:
    """The MLflow tracking/registry URIs, experiment and model name to use with ``target``."""
    mlflow = settings.mlflow
    if target.type != "databricks":
        return MlflowLocations(
            tracking_uri=mlflow.tracking_uri,
            registry_uri=mlflow.registry_uri,
            experiment=mlflow.experiment,
            model_name=settings.model.name,
            artifact_location=mlflow.artifact_location,
        )
    catalog = str(target.config.get("catalog") or target.config.get("database") or "")
    experiment = (
        mlflow.experiment
        if mlflow.experiment.startswith("/")
        else f"{SHARED_FOLDER}/{mlflow.experiment}"
    )
    return MlflowLocations(
        tracking_uri=DATABRICKS_TRACKING_URI
        if _is_local(mlflow.tracking_uri)
        else mlflow.tracking_uri,
        registry_uri=DATABRICKS_REGISTRY_URI
        if _is_local(mlflow.registry_uri)
        else mlflow.registry_uri,
        experiment=experiment,
        model_name=uc_model_name(catalog, SCORING_SCHEMA, settings.model.name),
        artifact_location=None,
    )


def apply_locations(settings: Settings, locations: MlflowLocations, target_name: str) -> Settings:
    """``settings`` with the MLflow section and model name of ``locations`` and ``dbt.target``
    pinned to ``target_name`` (everything downstream then reads one resolved configuration)."""
    mlflow = settings.mlflow.model_copy(
        update={
            "tracking_uri": locations.tracking_uri,
            "registry_uri": locations.registry_uri,
            "experiment": locations.experiment,
            "artifact_location": locations.artifact_location,
        }
    )
    model = settings.model.model_copy(update={"name": locations.model_name})
    dbt = settings.dbt.model_copy(update={"target": target_name})
    return settings.model_copy(update={"mlflow": mlflow, "model": model, "dbt": dbt})


def _local_sqlite(uri: str, base: Path) -> str:
    """``sqlite:///relative.db`` -> absolute path URI (and create the directory)."""
    path = Path(uri[len("sqlite:///") :])
    if not path.is_absolute():
        path = base / path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot create the MLflow store directory {path.parent}: {exc.strerror}"
        ) from None
    return f"sqlite:///{path}"


def resolve_tracking_uri(uri: str, base: Path | None = None) -> str:
    """The tracking URI with a local SQLite path made absolute (its directory created)."""
    if uri.startswith("sqlite:///"):
        return _local_sqlite(uri, base or Path.cwd())
    return uri


def resolve_artifact_location(
    location: str | None, tracking_uri: str, base: Path | None = None
) -> str | None:
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


#: Columns of MLflow's SQL store holding artifact locations: (table, column, scoped to the experiment).
_ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location", True),
    ("runs", "artifact_uri", True),
    ("logged_models", "artifact_location", True),
    ("model_versions", "storage_location", False),
)


def relocate_moved_artifacts(
    tracking_uri: str, experiment_id: str, stored: str | None, configured: str | None
) -> bool:
    """Point a local SQLite store at its artifacts' new place after the project moved.

    MLflow records absolute ``file://`` URIs (experiment, runs, logged models, model versions),
    so a copied or moved checkout would keep reading models from the old folder, or fail once it
    is gone. When the experiment's stored location differs from the configured one (resolved
    from the project) and the configured folder holds this experiment's runs, the stored prefix
    is rewritten to the configured one. True if it was."""
    if not (
        tracking_uri.startswith("sqlite:///")
        and stored
        and configured
        and stored.startswith("file://")
        and configured.startswith("file://")
        and stored.rstrip("/") != configured.rstrip("/")
    ):
        return False
    import sqlite3

    old, new = stored.rstrip("/"), configured.rstrip("/")
    new_root = Path(urlparse(new).path)
    con = sqlite3.connect(tracking_uri[len("sqlite:///") :])
    try:
        runs = [
            r[0]
            for r in con.execute(
                "select run_uuid from runs where experiment_id = ?", (experiment_id,)
            )
        ]
        if not runs or not any((new_root / run).is_dir() for run in runs):
            return False  # the configured folder is not a copy of this experiment's artifacts
        with con:
            for table, column, scoped in _ARTIFACT_COLUMNS:
                where = f"substr({column}, 1, {len(old)}) = ?" + (
                    " and experiment_id = ?" if scoped else ""
                )
                args = (old, experiment_id) if scoped else (old,)
                con.execute(
                    f"update {table} set {column} = ? || substr({column}, ?) where {where}",
                    (new, len(old) + 1, *args),
                )
    finally:
        con.close()
    return True


def configure(settings: Settings) -> str:
    """Point MLflow at the configured stores and return the experiment id (created if needed).

    ``settings`` are the runtime's (their MLflow section already resolved for the target)."""
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
                name,
                artifact_location=resolve_artifact_location(
                    settings.mlflow.artifact_location, tracking_uri
                ),
            )
        elif experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it or set mlflow.experiment"
            )
        else:
            experiment_id = experiment.experiment_id
            configured = resolve_artifact_location(settings.mlflow.artifact_location, tracking_uri)
            relocate_moved_artifacts(
                tracking_uri, experiment_id, experiment.artifact_location, configured
            )
        mlflow.set_experiment(experiment_id=experiment_id)
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"MLflow tracking store {settings.mlflow.tracking_uri} is unreachable ({first_line(exc)}); "
            "check mlflow.tracking_uri"
        ) from None
    return experiment_id


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """No artifact progress bars, INFO chatter or dataset-inference warnings from MLflow inside
    the block (the commands print their own progress)."""
    import mlflow  # noqa: F401 - configures its loggers on import: set their level after that
    from mlflow.utils import logging_utils

    # re-entrant: an inner block (validate, model loading) must not switch the lines back on
    was_enabled = logging_utils.MLFLOW_LOGGING_STREAM.enabled
    logging_utils.disable_logging()  # its event lines ("Registered model ... already exists")
    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # mlflow.data: "The specified dataset source can be interpreted in multiple ways",
            # schema inference on integer id columns, and similar notices
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was_enabled:
            logging_utils.enable_logging()
        logger.setLevel(level)
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved
