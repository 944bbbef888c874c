"""Project settings: read and validated once, then passed down.

Sources, lowest to highest precedence:
1. defaults in ``ml/settings.yaml`` (shipped with the package, so a wheel on Databricks has them),
2. an optional project file (``fraudops.yaml`` in the working directory, or ``FRAUDOPS_SETTINGS_FILE``),
3. environment variables ``FRAUDOPS__<SECTION>__<KEY>`` (e.g. ``FRAUDOPS__MLFLOW__TRACKING_URI``).

Nothing happens at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ml.platform.errors import ConfigError
from ml.platform.features import EXTRA_FEATURES, FEATURES
from ml.platform.sections import (
    DRIFT_KINDS,
    MAX_DRIFT_FACTOR,
    DataRobotSettings,
    DbtSettings,
    DriftEvent,
    FeatureSettings,
    LandingSettings,
    MlflowSettings,
    ModelSettings,
    OperateSettings,
    ReplaySettings,
    RetrainingSettings,
    ScoringSettings,
    ServingSettings,
    SimulationSettings,
    TrainingSettings,
    ValidationSettings,
    WarehouseSettings,
)

DEFAULTS_FILE = Path(__file__).with_name("settings.yaml")
PROJECT_FILE = "fraudops.yaml"

# YAML data for the settings being built (see load_settings); a context variable, not a global.
_FILE_DATA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "_FILE_DATA", default=None
)


class _YamlFilesSource(PydanticBaseSettingsSource):
    """The merged YAML settings files, as the lowest-precedence source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _FILE_DATA.get() or {}


class Settings(BaseSettings):
    """All of fraudops' configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDOPS__", env_nested_delimiter="__", extra="forbid"
    )

    dbt: DbtSettings = DbtSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    features: FeatureSettings = FeatureSettings()
    simulation: SimulationSettings = SimulationSettings()
    landing: LandingSettings = LandingSettings()
    mlflow: MlflowSettings = MlflowSettings()
    model: ModelSettings = ModelSettings()
    training: TrainingSettings = TrainingSettings()
    validation: ValidationSettings = ValidationSettings()
    scoring: ScoringSettings = ScoringSettings()
    replay: ReplaySettings = ReplaySettings()
    retraining: RetrainingSettings = RetrainingSettings()
    datarobot: DataRobotSettings = DataRobotSettings()
    operate: OperateSettings = OperateSettings()
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit overrides > environment variables > YAML files > defaults.
        return init_settings, env_settings, _YamlFilesSource(settings_cls)

    @model_validator(mode="after")
    def _features_known(self) -> Settings:
        if not self.model.features:
            raise ValueError("model.features must list at least one feature column")
        return self

    @model_validator(mode="after")
    def _watched_features_known(self) -> Settings:
        unknown = sorted(set(self.retraining.drift_features) - set(self.model.features))
        if unknown:
            raise ValueError(f"retraining.drift_features {unknown} are not in model.features")
        return self


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: settings file must be a YAML mapping of sections")
    return data


def _given(overrides: Any, loc: tuple[Any, ...]) -> bool:
    """Whether the value at ``loc`` (a validation error's location) came from ``overrides``."""
    value = overrides
    for part in loc:
        if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and part < len(value)
        ):
            value = value[part]
        else:
            return False
    return True


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from the shipped defaults, an optional project file, env vars and overrides.

    ``overrides`` are nested dicts per section (``training={"train_days": 14}``) and win over
    everything else; the CLI uses them for its options.
    """
    data = _read_yaml(DEFAULTS_FILE)
    project_file = (
        Path(path) if path else Path(os.environ.get("FRAUDOPS_SETTINGS_FILE", PROJECT_FILE))
    )
    if project_file.is_file():
        data = _deep_merge(data, _read_yaml(project_file))
    elif path:
        raise ConfigError(
            f"settings file not found: {project_file}; pass an existing settings file"
        )
    token = _FILE_DATA.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        # a value given as an option (not a file); a whole section's error stays ambiguous
        if len(first["loc"]) > 1 and _given(overrides, first["loc"]):
            raise ConfigError(f"invalid option for {where}: {first['msg']}") from None
        raise ConfigError(
            f"invalid setting {where}: {first['msg']}; fix {project_file if project_file.is_file() else 'fraudops.yaml'} "
            "or FRAUDOPS__ env vars"
        ) from None
    finally:
        _FILE_DATA.reset(token)


#: The settings and their sections (ml/platform/sections.py), importable from here.
__all__ = [
    "DRIFT_KINDS",
    "EXTRA_FEATURES",
    "FEATURES",
    "MAX_DRIFT_FACTOR",
    "DataRobotSettings",
    "DbtSettings",
    "DriftEvent",
    "FeatureSettings",
    "LandingSettings",
    "MlflowSettings",
    "ModelSettings",
    "OperateSettings",
    "ReplaySettings",
    "RetrainingSettings",
    "ScoringSettings",
    "ServingSettings",
    "Settings",
    "SimulationSettings",
    "TrainingSettings",
    "ValidationSettings",
    "load_settings",
]
