"""Fixtures of the online feature tests (helpers: support/serving.py, support/datarobot.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest
import requests
from support.datarobot import (
    DEPLOYMENT,
    TOKEN,
    ServedWorld,
    build_served_world,
    isolate,
    land_day_transactions,
    serving,
)
from support.serving import REPO_ROOT

from ml.lifecycle.loaded_model import LoadedModel, load_model
from ml.platform.tables import FEATURES
from ml.serving.datarobot import create_app
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
        with serving(create_app({DEPLOYMENT: service}, served.settings)) as url:
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
