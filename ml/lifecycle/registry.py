"""Registry aliases, never stages (mlops-stacks): ``ml train`` gives a new version the alias
``challenger``; ``ml promote`` moves ``champion`` to a validated challenger (the replaced one gets
``previous_champion``); ``ml rollback`` moves ``champion`` back. This module reads them.

The registered model's tag ``champion_history`` lists the champions in order, so that
consecutive rollbacks walk back.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from typing import TYPE_CHECKING

from ml.platform.errors import ModelRegistryError, TrackingError, first_line

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"  # the alias ml train gives a new version
PREVIOUS_CHAMPION = "previous_champion"
HISTORY_TAG = "champion_history"
HISTORY_LENGTH = 50
NEEDS_CHAMPION = "run ml train, ml validate, ml promote first"
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def now() -> str:
    """The current UTC time, to the second, ISO 8601 (the timestamps of version tags)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def current_user() -> str:
    """Who runs the command: ``FRAUDOPS_USER`` (CI, jobs), else the OS user."""
    user = os.environ.get("FRAUDOPS_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` with ``alias``; ``None`` if the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            return None
        raise TrackingError(f"model registry error for {name}@{alias}: {first_line(exc)}") from None
    except OSError as exc:  # connection errors of remote registries (requests' are OSErrors)
        raise TrackingError(
            f"model registry unreachable ({first_line(exc)}); check mlflow.registry_uri"
        ) from None


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Version ``version`` of ``name``; one-line ModelRegistryError if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            raise ModelRegistryError(f"model {name} has no version {version}") from None
        raise TrackingError(
            f"model registry error for {name} v{version}: {first_line(exc)}"
        ) from None


def require_champion(client: MlflowClient, name: str) -> ModelVersion:
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None:
        raise ModelRegistryError(f"model {name} has no champion yet; {NEEDS_CHAMPION}")
    return champion


def model_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def history(client: MlflowClient, name: str) -> list[str]:
    """The champions of ``name`` in order (the ``champion_history`` tag)."""
    model = client.get_registered_model(name)
    raw = (model.tags or {}).get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def set_history(client: MlflowClient, name: str, versions: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(versions[-HISTORY_LENGTH:]))
