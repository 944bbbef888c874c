"""``/invocations``, ``/fraud-reports`` and the status routes of the scoring app, on stub models
(no MLflow, no warehouse: tests/support/serving.py): the request formats, rows of one request
scored in time order, and bad requests rejected whole with a JSON error, the state untouched."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from support.serving import transaction

from ml.serving.inference_log import read_log

_ids = itertools.count(10_000)


def new_id() -> int:
    """A transaction id no other test of the module uses (they share one app)."""
    return next(_ids)


def csv_body(rows: list[dict]) -> bytes:
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def bodies(rows: list[dict]) -> dict[str, tuple[str, bytes]]:
    """The same rows in every accepted format: name -> (content type, body)."""
    columns = list(rows[0])
    as_json = {
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        },
        "inputs": {"inputs": rows},
        "instances": {"instances": rows},
        "inputs_columns": {"inputs": {c: [r[c] for r in rows] for c in columns}},
    }
    out = {name: ("application/json", json.dumps(b).encode()) for name, b in as_json.items()}
    out["csv"] = ("text/csv", csv_body(rows))
    return out


def test_every_request_format_gives_the_same_predictions(stub_server) -> None:
    # given one transaction, sent in each format with a new id (the state records each)
    scores = {}
    for name, (content_type, _) in bodies([transaction(0)]).items():
        row = transaction(new_id(), seconds=3600, tx_amount=150.0, customer_id=900)
        content_type, body = bodies([row])[name]
        # when it is posted
        response = stub_server.client.post(
            "/invocations", content=body, headers={"content-type": content_type}
        )
        # then it is scored, with the transaction id, an alert flag and the model version
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        assert prediction["transaction_id"] == row["transaction_id"]
        assert set(prediction) == {"transaction_id", "score", "is_alert", "model_version"}
        scores[name] = prediction["score"]
    # stub model scores depend on the amount only: the same score whatever the format
    assert len(set(scores.values())) == 1


def test_rows_of_one_request_are_scored_in_time_order(stub_server) -> None:
    # given three transactions of a new card sent latest first
    first, second, third = new_id(), new_id(), new_id()
    rows = [
        transaction(third, seconds=7200, customer_id=901),
        transaction(first, seconds=60, customer_id=901),
        transaction(second, seconds=3600, customer_id=901),
    ]
    # when they are posted in one request
    response = stub_server.client.post(
        "/invocations", json={"dataframe_records": rows}, params={"include_features": "true"}
    )
    # then they come back in the request's order, each counting the earlier ones of its card
    predictions = response.json()["predictions"]
    assert [p["transaction_id"] for p in predictions] == [third, first, second]
    counts = [p["features"]["customer_id_nb_tx_1day_window"] for p in predictions]
    assert counts == [3, 1, 2]


#: One bad value in an otherwise good row: test id -> (column, value); each is a 422.
BAD_VALUES = {
    "unparseable-timestamp": ("tx_datetime", "yesterday"),
    "negative-amount": ("tx_amount", -0.01),
    "amount-above-contract": ("tx_amount", 1e9),
    "id-not-a-number": ("customer_id", "abc"),
    "before-min-event-date": ("tx_datetime", "1999-12-31T23:59:59"),
}


def bad_requests() -> list:
    good = transaction(1)
    missing = {k: v for k, v in good.items() if k != "tx_amount"}
    return [
        pytest.param(
            "application/json", {"dataframe_records": [missing]}, 422, id="missing-column"
        ),
        *(
            pytest.param(
                "application/json", {"dataframe_records": [{**good, column: value}]}, 422, id=name
            )
            for name, (column, value) in BAD_VALUES.items()
        ),
        pytest.param(
            "application/json", {"dataframe_records": [good, good]}, 422, id="duplicate-id"
        ),
        pytest.param("application/json", {"dataframe_records": []}, 422, id="no-rows"),
        pytest.param(
            "application/json",
            {"dataframe_records": [good], "inputs": [good]},
            400,
            id="two-formats",
        ),
        pytest.param("application/json", {"records": [good]}, 400, id="no-format"),
        pytest.param("application/json", b"{not json", 400, id="malformed-json"),
        pytest.param("text/plain", b"hello", 415, id="unknown-content-type"),
        pytest.param(
            "application/json",
            {"dataframe_records": [transaction(k) for k in range(1, 1_002)]},
            413,
            id="too-many-rows",
        ),
        pytest.param("application/json", b" " * 200_001, 413, id="body-too-large"),
    ]


@pytest.mark.parametrize(("content_type", "body", "status"), bad_requests())
def test_a_bad_request_is_rejected_whole_and_changes_nothing(
    stub_server, content_type: str, body, status: int
) -> None:
    # given the state's size before
    before = stub_server.service.state.size()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # when a bad request arrives
    response = stub_server.client.post(
        "/invocations", content=content, headers={"content-type": content_type}
    )
    # then it gets a JSON error with its status, the state is unchanged, the server still up
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error_code", "message"}
    assert stub_server.service.state.size() == before
    assert stub_server.client.get("/health").status_code == 200


def test_a_bad_row_after_good_ones_records_none_of_them(stub_server) -> None:
    good = transaction(new_id(), customer_id=902)
    bad = transaction(new_id(), customer_id=902, tx_datetime="2018-13-01T00:00:00")
    response = stub_server.client.post("/invocations", json={"dataframe_records": [good, bad]})
    assert response.status_code == 422 and "row 1" in response.json()["message"]
    # the good row was not recorded: sent again alone, it is its card's first transaction
    again = stub_server.client.post(
        "/invocations", json={"dataframe_records": [good]}, params={"include_features": "true"}
    )
    assert again.json()["predictions"][0]["features"]["customer_id_nb_tx_1day_window"] == 1


def test_a_timestamp_with_an_offset_is_read_as_utc(stub_server) -> None:
    row = transaction(new_id(), customer_id=903, tx_datetime="2018-06-01T14:00:00+02:00")
    response = stub_server.client.post(
        "/invocations", json={"dataframe_records": [row]}, params={"include_features": "true"}
    )
    assert response.status_code == 200
    assert response.json()["predictions"][0]["features"]["tx_during_night"] == 0  # 12:00 UTC


def test_fraud_reports_update_the_state(stub_server) -> None:
    # given a transaction on a new terminal, 8 days before a later one there
    fraud, later = new_id(), new_id()
    stub_server.client.post(
        "/invocations",
        json={"dataframe_records": [transaction(fraud, seconds=-8 * 86_400, terminal_id=950)]},
    )
    # when it is reported as fraud (in any accepted format)
    response = stub_server.client.post(
        "/fraud-reports",
        json={
            "dataframe_split": {
                "columns": ["transaction_id", "reported_at"],
                "data": [[fraud, "2018-05-31T00:00:00"]],
            }
        },
    )
    assert response.status_code == 200 and response.json() == {"received": 1, "new": 1}
    # then a later transaction of the terminal sees it in its delayed risk window
    scored = stub_server.client.post(
        "/invocations",
        json={"dataframe_records": [transaction(later, seconds=60, terminal_id=950)]},
        params={"include_features": "true"},
    )
    assert scored.json()["predictions"][0]["features"]["terminal_id_risk_7day_window"] == 1.0
    # ... and a bad report is rejected
    bad = stub_server.client.post(
        "/fraud-reports", json={"dataframe_records": [{"transaction_id": 1}]}
    )
    assert bad.status_code == 422


def test_status_routes(stub_server) -> None:
    assert stub_server.client.get("/ping").status_code == 200
    assert stub_server.client.get("/health").json() == {"status": "ready"}
    version = stub_server.client.get("/version").json()
    assert version["model_name"] == "fraud_detector" and version["alias"] == "champion"
    assert version["run_id"] == f"run-{version['model_version']}"
    assert version["state"]["transactions"] >= 200 and version["state"]["as_of"] >= "2018-05-31"


def test_served_and_rejected_requests_reach_the_inference_log(stub_server) -> None:
    # given a served and a rejected request with known ids
    served_id = new_id()
    stub_server.client.post(
        "/invocations",
        json={"dataframe_records": [transaction(served_id, customer_id=904)]},
        headers={"x-request-id": "served-1"},
    )
    stub_server.client.post(
        "/invocations",
        content=b"x",
        headers={"content-type": "text/plain", "x-request-id": "bad-1"},
    )
    # then within the flush interval both are in the log's parquet files
    deadline = time.monotonic() + 5
    while True:
        logged = read_log(stub_server.log_dir).set_index("request_id")
        if {"served-1", "bad-1"} <= set(logged.index) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logged.loc["served-1", "transaction_id"] == served_id
    assert logged.loc["served-1", "status"] == 200 and logged.loc["served-1", "latency_ms"] > 0
    assert (
        logged.loc["bad-1", "status"] == 415
        and logged.loc["bad-1", "error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    )
