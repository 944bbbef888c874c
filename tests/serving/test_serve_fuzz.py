"""Fuzzing the scoring server from its own OpenAPI spec (schemathesis): whatever a client
sends, no 5xx, and the server still answers afterwards. A real uvicorn server (in a thread) on
stub models (tests/support/serving.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from support.serving import (
    StubRegistry,
    free_port,
    stub_service_builder,
    uvicorn_thread,
    wait_ready,
)

from ml.platform.settings import load_settings
from ml.serving.api.app import create_app
from ml.serving.windows import FeatureWindows

EXAMPLES = 20  # per operation and mode
DATAROBOT_PATHS = ("/predApi/", "/api/v2/")


@pytest.fixture(scope="module")
def fuzzed_url(tmp_path_factory: pytest.TempPathFactory, windows: FeatureWindows) -> Iterator[str]:
    log_dir = tmp_path_factory.mktemp("fuzz-log")
    app_settings = load_settings(serving={"log_dir": str(log_dir), "max_body_bytes": 100_000})
    app = create_app(
        app_settings, stub_service_builder(app_settings, windows, StubRegistry({"champion": "1"}))
    )
    with uvicorn_thread(app, free_port()) as url, httpx.Client(base_url=url) as client:
        wait_ready(client)
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_server_fail(fuzzed_url: str, mode: GenerationMode) -> None:
    # given every operation of the server's OpenAPI spec (valid, then invalid requests)
    api = schemathesis.openapi.from_url(f"{fuzzed_url}/openapi.json")
    # (DataRobot's routes read a raw body in DataRobot's formats, undeclared in the spec, and answer
    # errors in DataRobot's shape: tests/serving/test_datarobot_api.py drives them with DataRobot's
    # own client and its refusal cases)
    operations = [
        op
        for op in (result.ok() for result in api.get_all_operations())
        if not op.path.startswith(DATAROBOT_PATHS)
    ]
    assert {op.path for op in operations} >= {"/invocations", "/fraud-reports", "/version"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameter or body to break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            # when the fuzzer sends a request generated from the spec
            response = case.call()
            # then the answer is never a server error; an error is JSON with a code and message
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            if response.status_code >= 400:
                assert {"error_code", "message"} <= set(response.json())

        check()


def test_the_server_is_alive_after_the_fuzzing(fuzzed_url: str) -> None:
    with httpx.Client(base_url=fuzzed_url) as client:
        assert client.get("/health").status_code == 200
        row = {
            "transaction_id": 987_654,
            "tx_datetime": "2018-06-01T10:00:00",
            "customer_id": 1,
            "terminal_id": 2,
            "tx_amount": 10.0,
        }
        response = client.post("/invocations", json={"dataframe_records": [row]})
        assert response.status_code == 200
