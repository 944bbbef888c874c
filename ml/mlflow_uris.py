"""MLflow locations derived from the dbt target, so that one ``--target`` switches both halves.

On a ``databricks`` target (dbt-databricks, Unity Catalog):

* tracking URI ``databricks`` (the workspace's MLflow tracking server),
* registry URI ``databricks-uc`` (models in Unity Catalog),
* a three-part model name ``<catalog>.<schema>.<model.name>``: the target's catalog and the schema
  ``ml`` writes to (the schema of ``scoring.predictions_table``, i.e. ``scoring``), so the model
  lives next to its predictions and one set of grants covers both,
* the experiment as a workspace path: ``mlflow.experiment`` if it is one already (the bundle's job
  passes ``FRAUDOPS__MLFLOW__EXPERIMENT``), else ``/Shared/<mlflow.experiment>``,
* no local artifact location (Databricks picks the artifact store).

Other targets (``local`` DuckDB, ``spark``) keep the settings as they are (local SQLite by default).
Values set explicitly to something that is not a local store win: a ``databricks`` target with
``mlflow.tracking_uri: databricks://my-profile`` keeps that URI.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.errors import ConfigError
from ml.settings import Settings
from ml.warehouse import Target, resolve_target

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


def _schema_of(relation: str) -> str:
    parts = relation.split(".")
    if len(parts) < 2:
        raise ConfigError(f"scoring.predictions_table {relation!r} must be schema.table")
    return parts[-2]


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
    experiment = mlflow.experiment if mlflow.experiment.startswith("/") else f"{SHARED_FOLDER}/{mlflow.experiment}"
    return MlflowLocations(
        tracking_uri=DATABRICKS_TRACKING_URI if _is_local(mlflow.tracking_uri) else mlflow.tracking_uri,
        registry_uri=DATABRICKS_REGISTRY_URI if _is_local(mlflow.registry_uri) else mlflow.registry_uri,
        experiment=experiment,
        model_name=uc_model_name(catalog, _schema_of(settings.scoring.predictions_table), settings.model.name),
        artifact_location=None,
    )


def settings_for_target(settings: Settings, target: str | None = None) -> Settings:
    """``settings`` with the MLflow section and model name of the resolved dbt ``target``.

    The returned copy also pins ``dbt.target``, so everything downstream (warehouse, dbt runner)
    uses the same target. Call it once after :func:`ml.settings.load_settings`.
    """
    resolved = resolve_target(settings, target)
    locations = mlflow_locations(settings, resolved)
    mlflow = settings.mlflow.model_copy(
        update={
            "tracking_uri": locations.tracking_uri,
            "registry_uri": locations.registry_uri,
            "experiment": locations.experiment,
            "artifact_location": locations.artifact_location,
        }
    )
    model = settings.model.model_copy(update={"name": locations.model_name})
    dbt = settings.dbt.model_copy(update={"target": resolved.name})
    return settings.model_copy(update={"mlflow": mlflow, "model": model, "dbt": dbt})
