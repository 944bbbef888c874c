"""`ml serve` answers DataRobot's Prediction API for its configured deployment ids: the same
service (state, champion, inference log) as /invocations (tests/serving/test_datarobot_api.py
checks the route's formats with DataRobot's own client)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support.serving import StubRegistry, stub_service_builder, transaction, wait_ready

from ml.platform.settings import load_settings
from ml.serving.api.app import create_app

DEPLOYMENT = "5f2a6f3b9c0d1e2f3a4b5c6d"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, windows):
    settings = load_settings(
        serving={"log_dir": str(tmp_path_factory.mktemp("log")), "flush_seconds": 0.1},
        datarobot={"deployments": {DEPLOYMENT: {"model": "fraud_detector", "alias": "champion"}}},
    )
    app = create_app(
        settings, stub_service_builder(settings, windows, StubRegistry({"champion": "1"}))
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        wait_ready(test_client)
        yield test_client


def test_a_configured_deployment_is_scored_like_invocations(client) -> None:
    # given two new transactions of the same amount (the stub champion scores the amount only)
    ours, theirs = (
        transaction(99_100_001, tx_amount=180.0),
        transaction(99_100_002, tx_amount=180.0),
    )
    # when one is posted to /invocations and the other to the DataRobot route
    invocation = client.post("/invocations", json={"dataframe_records": [ours]})
    predicted = client.post(
        f"/predApi/v1.0/deployments/{DEPLOYMENT}/predictions",
        json=[theirs],
        headers={"Accept": "application/json"},
    )
    # then both are answered by the same champion with the same score, in DataRobot's shape
    assert invocation.status_code == 200 and predicted.status_code == 200, predicted.text
    (expected,) = invocation.json()["predictions"]
    (row,) = predicted.json()["data"]
    fraud = next(v["value"] for v in row["predictionValues"] if v["label"] == 1)
    assert row["rowId"] == 0
    assert fraud == pytest.approx(expected["score"], abs=1e-12)
    assert row["prediction"] == int(expected["is_alert"])
    assert "X-DataRobot-Execution-Time" in predicted.headers


def test_an_unknown_deployment_is_a_404_message(client) -> None:
    response = client.post(
        "/predApi/v1.0/deployments/not-ours/predictions", json=[transaction(99_100_003)]
    )
    assert response.status_code == 404
    assert "not-ours" in response.json()["message"]
