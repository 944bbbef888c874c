"""The dbt target: ``profiles.yml`` read the way dbt reads it.

One resolved :class:`Target` names the engine (``duckdb``, ``spark``, ``databricks``) and its
connection settings; :class:`ml.platform.runtime.Runtime` resolves it once per command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ml.platform.errors import ConfigError
from ml.platform.settings import DbtSettings


@dataclass(frozen=True)
class Target:
    """A resolved dbt output from profiles.yml."""

    name: str
    type: str
    config: dict[str, Any]
    project_dir: Path


def _render_env(value: Any) -> Any:
    """Render dbt's ``{{ env_var('X', 'default') }}`` in profile values."""
    if isinstance(value, dict):
        return {k: _render_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_env(v) for v in value]
    if isinstance(value, str) and "{{" in value:

        def env_var(name: str, default: str | None = None) -> str:
            if name in os.environ:
                return os.environ[name]
            if default is None:
                raise ConfigError(
                    f"profiles.yml needs environment variable {name}; set it and retry"
                )
            return default

        return (
            jinja2.Environment(undefined=jinja2.StrictUndefined)
            .from_string(value)
            .render(env_var=env_var)
        )
    return value


def resolve_target(dbt: DbtSettings, target: str | None = None) -> Target:
    """Read profiles.yml like dbt does and pick ``target`` (default: ``dbt.target``, then the
    profile's default, which reads ``$FRAUDOPS_TARGET``)."""
    project_dir = Path(dbt.project_dir).resolve()
    profiles_file = Path(dbt.profiles_dir).resolve() / "profiles.yml"
    if not profiles_file.is_file():
        raise ConfigError(
            f"no profiles.yml in {profiles_file.parent}; set dbt.profiles_dir in settings"
        )
    profile = (yaml.safe_load(profiles_file.read_text()) or {}).get("fraudops")
    if not profile:
        raise ConfigError(f"{profiles_file} has no 'fraudops' profile")
    name = target or dbt.target or _render_env(profile["target"])
    outputs = profile.get("outputs", {})
    if name not in outputs:
        raise ConfigError(f"target {name!r} not in profiles.yml (have: {', '.join(outputs)})")
    config = _render_env(outputs[name])
    return Target(name=name, type=config["type"], config=config, project_dir=project_dir)


def duckdb_path(target: Target) -> Path:
    """The DuckDB file of a ``duckdb`` target (a relative path is relative to the project)."""
    path = Path(target.config.get("path", "warehouse/fraudops.duckdb"))
    return path if path.is_absolute() else target.project_dir / path


def prepare_target(target: Target) -> None:
    """Create what a first dbt run on ``target`` needs on this machine: the folder of the DuckDB
    file (git-ignored, so absent from a fresh clone; DuckDB creates the file, not its folder).
    Nothing for other targets."""
    if target.type == "duckdb":
        duckdb_path(target).parent.mkdir(parents=True, exist_ok=True)
