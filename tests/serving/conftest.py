"""Fixtures of the serving tests (helpers: tests/support/serving.py, tests/support/datarobot.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests
from fastapi.testclient import TestClient
from support.datarobot import (
    DEPLOYMENT,
    TOKEN,
    ServedWorld,
    build_served_world,
    isolate,
    land_day_transactions,
    serving,
)
from support.serving import REPO_ROOT, StubRegistry, stub_service_builder, wait_ready

from ml.lifecycle.loaded_model import LoadedModel, load_model
from ml.platform.settings import load_settings
from ml.platform.tables import FEATURES
from ml.serving.api.app import create_app
from ml.serving.datarobot import create_app as create_datarobot_app
from ml.serving.scoring import OnlineScoringService
from ml.serving.windows import FeatureWindows


@pytest.fixture(scope="session")
def windows() -> FeatureWindows:
    """The windows of the repository's dbt project (1/7/30 days, delay 7, look-back 37)."""
    return FeatureWindows.from_dbt_project(REPO_ROOT)


@dataclass
class DataRobotServer:
    """The served world after day D's reports came as actuals and its transactions landed."""

    served: ServedWorld
    service: OnlineScoringService
    url: str
    actuals_response: requests.Response
    actuals: list[dict]
    gold: pd.DataFrame  # day D's rows of gold.transaction_features (input order of the requests)
    model: LoadedModel  # the champion, loaded for batch scoring


@pytest.fixture(scope="module")
def datarobot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRobotServer]:
    """One world per module (support/datarobot.py): trained through D - 1, the champion served
    by a real uvicorn server; day D's fraud reports posted as DataRobot actuals (plus as many
    actuals of 0), then day D's transactions landed and gold rebuilt."""
    root = tmp_path_factory.mktemp("datarobot")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        served = build_served_world(root)
        service = OnlineScoringService.from_runtime(served.rt)
        with serving(create_datarobot_app({DEPLOYMENT: service}, served.settings)) as url:
            reports = served.day_reports()
            genuine = served.day_transactions().head(len(reports))
            actuals = [
                {
                    "associationId": str(row.transaction_id),
                    "actualValue": 1,
                    "wasActedOn": False,
                    "timestamp": row.reported_at.isoformat() + "Z",
                }
                for row in reports.itertuples()
            ] + [
                {"associationId": int(row.transaction_id), "actualValue": 0}
                for row in genuine.itertuples()
            ]
            response = requests.post(
                f"{url}/api/v2/deployments/{DEPLOYMENT}/actuals/fromJSON/",
                json={"data": actuals},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            land_day_transactions(served)
            transactions = served.day_transactions()
            with served.rt.warehouse(read_only=True) as wh:
                gold = wh.read(FEATURES, date_column="tx_date", start=served.day, end=served.day)
            gold = transactions[["transaction_id"]].merge(gold, on="transaction_id", how="left")
            model = load_model(service.model_name, service.model_version)
            yield DataRobotServer(served, service, url, response, actuals, gold, model)


@dataclass
class StubServer:
    """A scoring app on stub models (tests/support/serving.py), with its test client."""

    client: TestClient
    registry: StubRegistry
    log_dir: Path

    @property
    def service(self):
        return self.client.app.state.serving.service


@pytest.fixture(scope="module")
def stub_server(
    tmp_path_factory: pytest.TempPathFactory, windows: FeatureWindows
) -> Iterator[StubServer]:
    """One app per test module: stub champion v1, a state of 10 days of history, the inference
    log in a tmp folder, the champion polled every 50 ms."""
    log_dir = tmp_path_factory.mktemp("serving-log")
    settings = load_settings(
        serving={
            "log_dir": str(log_dir),
            "poll_seconds": 0.05,
            "flush_seconds": 0.1,
            "max_body_bytes": 200_000,
            "max_rows": 1_000,
        }
    )
    registry = StubRegistry({"champion": "1"})
    app = create_app(settings, stub_service_builder(settings, windows, registry))
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        yield StubServer(client, registry, log_dir)
