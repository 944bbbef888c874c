"""Builders of the DataRobot-compatible API tests (tests/serving/test_datarobot_api.py): a small
simulated world served by a real uvicorn server on a free port. Fixtures live in conftest.py."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.platform.runtime import Runtime
from ml.platform.settings import Settings, SimulationSettings, load_settings
from ml.world.landing import FRAUD_REPORTS, write_landing
from ml.world.simulator import SimulatedWorld, simulate
from support.common import mlflow_env

DEPLOYMENT = "5f0c0ffee0000000000000aa"
TOKEN = "test-token"


@dataclass
class ServedWorld:
    """A world served through day D - 1, whose day D is what the tests send."""

    root: Path
    settings: Settings
    world: SimulatedWorld
    day: dt.date

    @property
    def rt(self) -> Runtime:
        return Runtime.build(self.settings)

    def day_transactions(self) -> pd.DataFrame:
        tx = self.world.transactions
        rows = tx.loc[tx["tx_datetime"].dt.date == self.day]
        return rows[
            ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
        ].reset_index(drop=True)

    def day_reports(self) -> pd.DataFrame:
        reports = self.world.fraud_reports
        return reports.loc[reports["reported_at"].dt.date == self.day].reset_index(drop=True)


def isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Warehouse, landing root, settings file and MLflow store under ``root``."""
    mp.setenv("FRAUDOPS_DUCKDB_PATH", str(root / "warehouse.duckdb"))
    mp.setenv("FRAUDOPS_LANDING_ROOT", str(root / "landing"))
    mp.setenv("FRAUDOPS_SETTINGS_FILE", str(root / "fraudops.yaml"))
    mp.setenv("DBT_TARGET_PATH", str(root / "target"))
    mp.setenv("DBT_LOG_PATH", str(root / "logs"))
    mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("FRAUDOPS_TARGET", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mp.delenv(name, raising=False)
    for key, value in mlflow_env(root).items():
        mp.setenv(key, value)


def build_served_world(root: Path, days: int = 36, seed: int = 3) -> ServedWorld:
    """Land days 0..D-1, build gold, train a logistic regression and make it the champion."""
    from mlflow import MlflowClient

    from ml.lifecycle.train import train

    (root / "fraudops.yaml").write_text(
        yaml.safe_dump(
            {
                "training": {"candidates": ["logistic_regression"]},
                "landing": {"root": str(root / "landing")},
                "datarobot": {
                    "deployments": {DEPLOYMENT: {"model": "fraud_detector", "alias": "champion"}},
                    "token": TOKEN,
                },
            }
        )
    )
    settings = load_settings()
    world = simulate(SimulationSettings(customers=300, terminals=300, days=days, seed=seed))
    day = world.end
    write_landing(world, root / "landing", to_day=day - dt.timedelta(days=1))
    rt = Runtime.build(settings)
    rt.dbt(["run", "--select", "+transaction_features"])
    result = train(rt)
    client = MlflowClient(settings.mlflow.tracking_uri, settings.mlflow.tracking_uri)
    client.set_registered_model_alias(result.model_name, "champion", result.model_version)
    return ServedWorld(root, settings, world, day)


def land_day_transactions(served: ServedWorld) -> None:
    """Land day D's transactions only (its reports come as actuals), then build gold."""
    write_landing(served.world, served.root / "landing", from_day=served.day, to_day=served.day)
    FRAUD_REPORTS.file_path(served.root / "landing", served.day).unlink()
    served.rt.dbt(["run", "--select", "+transaction_features"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` on a real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
