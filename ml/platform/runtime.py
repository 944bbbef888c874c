"""What one ``ml`` command shares, built once: settings, the resolved dbt target, the warehouse,
the MLflow locations and the dbt vars.

The CLI builds a :class:`Runtime` from the settings and ``--target``; every domain function takes
it and never resolves the target, the MLflow stores or the dbt vars again::

    rt = Runtime.build(load_settings(), target="spark")
    with rt.warehouse(read_only=True) as wh:
        ...
    rt.dbt(["build", "--selector", "medallion"])

The settings are the source of truth for the dbt vars (:meth:`Runtime.dbt_vars`): every dbt
invocation from ``ml`` passes them, so the SQL and the Python side cannot disagree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.platform import mlflow_store
from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.settings import Settings
from ml.platform.tables import SCORING_SOURCE_COLUMNS
from ml.platform.targets import Target, prepare_target, resolve_target
from ml.platform.warehouse import Warehouse, open_warehouse

if TYPE_CHECKING:
    from mlflow import MlflowClient


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """The dbt project's vars (dbt_project.yml) that mirror a setting, from ``settings``."""
    features = settings.features
    values: dict[str, Any] = {
        "landing_root": str(Path(settings.landing.root).resolve()),
        "serving_log_root": str(Path(settings.serving.log_dir).resolve()),
        "customer_windows_days": list(features.customer_windows_days),
        "terminal_windows_days": list(features.terminal_windows_days),
        "terminal_delay_days": features.terminal_delay_days,
        "max_tx_amount": settings.landing.max_tx_amount,
        "min_event_date": settings.landing.min_event_date.isoformat(),
        "max_days_ahead_of_load": settings.landing.max_days_ahead_of_load,
        "label_maturity_days": settings.training.delay_days,
        "alert_top_k": settings.model.alert_top_k,
        "card_precision_k": settings.model.top_k_cards,
        "psi_bins": settings.training.reference_bins,
        "scoring_tables": SCORING_SOURCE_COLUMNS,
    }
    if settings.retraining.psi_threshold is not None:
        values["psi_drift_threshold"] = settings.retraining.psi_threshold
    return values


@dataclass(frozen=True)
class Runtime:
    """Settings (their MLflow section resolved for the target) + the target + MLflow locations."""

    settings: Settings
    target: Target
    mlflow: mlflow_store.MlflowLocations

    @classmethod
    def build(cls, settings: Settings, target: str | None = None) -> Runtime:
        """Resolve ``target`` (default: ``dbt.target``, then the profile's default) once."""
        resolved = resolve_target(settings.dbt, target)
        locations = mlflow_store.mlflow_locations(settings, resolved)
        return cls(
            mlflow_store.apply_locations(settings, locations, resolved.name), resolved, locations
        )

    def with_settings(self, **sections: dict[str, Any]) -> Runtime:
        """A copy whose settings sections are updated, e.g. ``training={"test_end": day}``
        (the replay trains on a window of its own; nothing else changes)."""
        update = {
            name: getattr(self.settings, name).model_copy(update=values)
            for name, values in sections.items()
        }
        return replace(self, settings=self.settings.model_copy(update=update))

    # -- warehouse ---------------------------------------------------------------------------------
    @contextmanager
    def warehouse(self, read_only: bool = False) -> Iterator[Warehouse]:
        """The target's warehouse, closed on exit."""
        memory_limit = self.settings.warehouse.duckdb_memory_limit
        with open_warehouse(self.target, read_only, duckdb_memory_limit=memory_limit) as wh:
            yield wh

    # -- dbt ---------------------------------------------------------------------------------------
    @property
    def dbt_target_path(self) -> Path:
        """Where dbt writes its artifacts: ``$DBT_TARGET_PATH``, else ``<project>/target``."""
        if os.environ.get("DBT_TARGET_PATH"):
            return Path(os.environ["DBT_TARGET_PATH"]).resolve()
        return Path(self.settings.dbt.project_dir).resolve() / "target"

    def dbt_vars(self) -> dict[str, Any]:
        return dbt_vars(self.settings)

    def dbt_args(self, extra_vars: dict[str, Any] | None = None) -> list[str]:
        """Flags every dbt command from ``ml`` gets: the vars derived from the settings (plus
        ``extra_vars``, e.g. the daily builds' data_tests_scope)."""
        return ["--vars", json.dumps({**self.dbt_vars(), **(extra_vars or {})})]

    def dbt(self, args: list[str], *, check: bool = True, stream: bool = False) -> DbtResult:
        """``dbt <args>`` on this target (a subprocess), with the settings' vars."""
        prepare_target(self.target)
        dbt = self.settings.dbt
        return run_dbt(
            [*args, *self.dbt_args()],
            project_dir=dbt.project_dir,
            profiles_dir=dbt.profiles_dir,
            target=self.target.name,
            target_path=self.dbt_target_path,
            check=check,
            stream=stream,
        )

    # -- MLflow --------------------------------------------------------------------------------------
    def configure_mlflow(self) -> str:
        """Point MLflow at this runtime's stores; the experiment id (created if needed)."""
        return mlflow_store.configure(self.settings)

    def registry(self) -> MlflowClient:
        """A client of the configured registry (one-line TrackingError if unreachable)."""
        from mlflow import MlflowClient

        self.configure_mlflow()
        return MlflowClient()

    @property
    def model_name(self) -> str:
        return self.settings.model.name
