"""The DataRobot-compatible Prediction API (ml/serving/datarobot.py), driven by DataRobot's own
client (``datarobot-predict``) against a real uvicorn server: an existing client changes only
its base URL, and gets the champion's batch scores of the same transactions.

One world per module (conftest.py ``datarobot_server``): day D's fraud reports arrive as
actuals (they land as fraud_reports files and update the online state), then day D's
transactions are scored online and compared with the model on gold.transaction_features.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import requests
from support.datarobot import DEPLOYMENT, TOKEN

from ml.lifecycle.data import feature_matrix
from ml.lifecycle.explain import Explainer
from ml.platform.tables import FRAUD_REPORTS
from ml.world.landing_checks import validate_landing_file

pytestmark = pytest.mark.slow  # simulate, two dbt runs, train, a server

TARGET = "tx_fraud"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(datarobot_server):
    """DataRobot's Python client, configured as a customer would (token + endpoint)."""
    import datarobot as dr
    from datarobot_predict import deployment

    dr.Client(token=TOKEN, endpoint=f"{datarobot_server.url}/api/v2")
    deployment.clear_context()
    return deployment


def _batch(server) -> np.ndarray:
    return server.model.scores(server.gold)


def test_actuals_land_as_fraud_reports_and_reach_silver(datarobot_server) -> None:
    # given day D's reports posted as actuals of 1 (and as many genuine ones as 0) before D landed
    served = datarobot_server.served
    reports = served.day_reports()
    # then the API accepted them
    assert datarobot_server.actuals_response.status_code == 202
    body = datarobot_server.actuals_response.json()
    assert body["fraudReports"] == len(reports) > 0
    assert body["actuals"] == len(datarobot_server.actuals)
    # and each landed file keeps the landing contract
    for path in body["files"]:
        assert validate_landing_file(path) == []
    # and silver read them: the same reports, at the same instants
    with served.rt.warehouse(read_only=True) as wh:
        silver = wh.read(FRAUD_REPORTS, ["transaction_id", "reported_at"])
    on_day = silver.loc[silver["reported_at"].dt.date == served.day].sort_values("transaction_id")
    expected = reports[["transaction_id", "reported_at"]].sort_values("transaction_id")
    assert on_day["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert (on_day["reported_at"].to_numpy() == expected["reported_at"].to_numpy()).all()


def test_the_datarobot_client_gets_the_batch_scores(datarobot_server, client) -> None:
    # given day D's transactions, as a client sends them
    transactions = datarobot_server.served.day_transactions()
    # when DataRobot's client asks for predictions
    result = client.predict(
        DEPLOYMENT,
        transactions,
        prediction_endpoint=f"{datarobot_server.url}/predApi/v1.0",
    )
    frame = result.dataframe
    # then every row has the champion's batch score on the gold table (rows in input order)
    batch = _batch(datarobot_server)
    np.testing.assert_allclose(frame[f"{TARGET}_1_PREDICTION"], batch, rtol=0, atol=1e-9)
    np.testing.assert_allclose(frame[f"{TARGET}_0_PREDICTION"], 1 - batch, rtol=0, atol=1e-9)
    threshold = datarobot_server.service.threshold
    assert (frame[f"{TARGET}_PREDICTION"] == (batch >= threshold).astype(int)).all()
    assert (frame["THRESHOLD"] == threshold).all() and (frame["POSITIVE_CLASS"] == 1).all()
    assert not any(c.startswith("EXPLANATION_") for c in frame.columns)
    # and DataRobot's headers
    assert int(result.response_headers["X-DataRobot-Execution-Time"]) >= 0
    assert result.response_headers["X-DataRobot-Model-Cache-Hit"] == "true"


def test_explanations_and_passthrough_columns_match_the_batch_reasons(
    datarobot_server, client
) -> None:
    transactions = datarobot_server.served.day_transactions()
    # when the client asks for 3 explanations and two passthrough columns (serverless path)
    frame = client.predict(
        DEPLOYMENT,
        transactions,
        max_explanations=3,
        passthrough_columns={"transaction_id", "customer_id"},
        prediction_endpoint=f"{datarobot_server.url}/api/v2",
    ).dataframe
    # then the passthrough values are the input's
    assert frame["transaction_id"].tolist() == transactions["transaction_id"].tolist()
    assert frame["customer_id"].tolist() == transactions["customer_id"].tolist()
    # and the explanations are the batch reason codes of the gold features
    model = datarobot_server.model
    top = Explainer.for_model(model).top_reasons(
        feature_matrix(datarobot_server.gold, model.columns), 3
    )
    for rank in (1, 2, 3):
        expected = top.loc[top["reason_rank"] == rank]
        assert frame[f"EXPLANATION_{rank}_FEATURE_NAME"].tolist() == expected["feature"].tolist()
        np.testing.assert_allclose(
            frame[f"EXPLANATION_{rank}_STRENGTH"], expected["strength"], rtol=0, atol=1e-9
        )
        np.testing.assert_allclose(
            frame[f"EXPLANATION_{rank}_ACTUAL_VALUE"], expected["feature_value"], atol=1e-9
        )
        assert frame[f"EXPLANATION_{rank}_QUALITATIVE_STRENGTH"].str.fullmatch(r"[+-]{1,3}").all()
    assert (frame["EXPLANATION_1_QUALITATIVE_STRENGTH"].isin(["+++", "---"])).all()


def test_only_rows_outside_the_threshold_band_are_explained(datarobot_server, client) -> None:
    transactions = datarobot_server.served.day_transactions()
    batch = _batch(datarobot_server)
    high = float(np.quantile(batch, 0.9))
    # when explanations are asked only above thresholdHigh, with every column passed through
    frame = client.predict(
        DEPLOYMENT,
        transactions,
        max_explanations=2,
        threshold_high=high,
        threshold_low=0.0,
        passthrough_columns="all",
        prediction_endpoint=f"{datarobot_server.url}/predApi/v1.0",
    ).dataframe
    # then exactly the rows above it have them, and every input column came back
    assert frame["EXPLANATION_1_FEATURE_NAME"].notna().tolist() == (batch > high).tolist()
    assert set(transactions.columns) <= set(frame.columns)


def test_json_and_gzip_bodies_give_datarobot_json(datarobot_server) -> None:
    transactions = datarobot_server.served.day_transactions().head(5)
    records = json.loads(transactions.to_json(orient="records", date_format="iso"))
    # when a gzipped JSON array is posted, asking for JSON with explanations and a passthrough
    response = requests.post(
        f"{datarobot_server.url}/predApi/v1.0/deployments/{DEPLOYMENT}/predictions",
        params={"maxExplanations": 2, "passthroughColumns": ["terminal_id"]},
        data=gzip.compress(json.dumps(records).encode()),
        headers={
            **AUTH,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
        },
        timeout=60,
    )
    # then DataRobot's JSON: rows in order, both classes' values, explanations, passthrough
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    batch = _batch(datarobot_server)[:5]
    assert [r["rowId"] for r in rows] == list(range(5))
    for row, score, record in zip(rows, batch, records, strict=True):
        values = {v["label"]: v["value"] for v in row["predictionValues"]}
        assert abs(values[1] - score) <= 1e-9 and abs(values[0] - (1 - score)) <= 1e-9
        assert row["prediction"] == int(score >= row["predictionThreshold"])
        assert len(row["predictionExplanations"]) == 2
        assert {"label", "feature", "featureValue", "strength", "qualitativeStrength"} == set(
            row["predictionExplanations"][0]
        )
        assert row["passthroughValues"] == {"terminal_id": record["terminal_id"]}


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"headers": {}}, 401, "token"),
        ({"deployment": "nope"}, 404, "deployment nope not found"),
        ({"drop": "tx_amount"}, 400, "missing column(s) tx_amount"),
        ({"params": {"passthroughColumns": "nope"}}, 400, "passthrough column(s) nope"),
        ({"params": {"maxExplanations": "many"}}, 422, "maxExplanations"),
        ({"params": {"thresholdHigh": "2"}}, 422, "thresholdHigh"),
        ({"params": {"passthroughColumnsSet": "some"}}, 422, "passthroughColumnsSet"),
        ({"bomb": True}, 413, "50 MB limit"),
    ],
)
def test_refusals_are_datarobot_messages(datarobot_server, change, status, says) -> None:
    transactions = datarobot_server.served.day_transactions().head(3)
    if "drop" in change:
        transactions = transactions.drop(columns=change["drop"])
    body = transactions.to_csv(index=False).encode()
    headers = {**change.get("headers", AUTH), "Content-Type": "text/csv"}
    if change.get("bomb"):  # 51 MB once inflated: refused, whatever its compressed size
        body = gzip.compress(b"0" * (51 * 2**20))
        headers["Content-Encoding"] = "gzip"
    response = requests.post(
        f"{datarobot_server.url}/predApi/v1.0/deployments/"
        f"{change.get('deployment', DEPLOYMENT)}/predictions",
        params=change.get("params", {}),
        data=body,
        headers=headers,
        timeout=60,
    )
    assert response.status_code == status
    assert says in response.json()["message"]


def test_actuals_are_checked(datarobot_server) -> None:
    url = f"{datarobot_server.url}/api/v2/deployments/{DEPLOYMENT}/actuals/fromJSON/"
    bad = requests.post(
        url, json={"data": [{"associationId": "1", "actualValue": 2}]}, headers=AUTH, timeout=30
    )
    assert bad.status_code == 422 and "0 or 1" in bad.json()["message"]
    empty = requests.post(url, json={"data": []}, headers=AUTH, timeout=30)
    assert empty.status_code == 422
