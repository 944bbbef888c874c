"""Hot champion swap: when ``champion`` moves in the registry, the server loads the new version
in the background and swaps it in between requests; no request fails or mixes versions, and a
rollback is picked up the same way (stub models and registry: tests/support/serving.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.serving import StubRegistry, stub_service_builder, transaction, wait_ready

from ml.platform.settings import load_settings
from ml.serving.api.app import create_app
from ml.serving.windows import FeatureWindows


@pytest.fixture
def swapping(tmp_path, windows: FeatureWindows) -> Iterator[tuple[TestClient, StubRegistry]]:
    """An app polling every 50 ms, whose models take 0.3 s to load."""
    settings = load_settings(
        serving={"log_dir": str(tmp_path), "poll_seconds": 0.05, "flush_seconds": 0.1}
    )
    registry = StubRegistry({"champion": "1"})
    app = create_app(settings, stub_service_builder(settings, windows, registry, delay=0.3))
    with TestClient(app) as client:
        wait_ready(client)
        yield client, registry


def wait_for_version(client: TestClient, version: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/version").json()["model_version"] != version:
        assert time.monotonic() < deadline, f"v{version} never served"
        time.sleep(0.02)


def test_a_promotion_and_a_rollback_swap_without_failing_a_request(swapping) -> None:
    client, registry = swapping
    answers: list[tuple[int, set[str]]] = []
    stop = threading.Event()

    def traffic() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            rows = [transaction(100_000 + 3 * k + j, seconds=k) for j in range(3)]
            response = client.post("/invocations", json={"dataframe_records": rows})
            versions = {p["model_version"] for p in response.json().get("predictions", [])}
            answers.append((response.status_code, versions))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        # given traffic on v1; when champion moves to v2, then back to v1 (a rollback)
        time.sleep(0.2)
        registry.aliases["champion"] = "2"
        wait_for_version(client, "2")
        time.sleep(0.2)
        registry.aliases["champion"] = "1"
        wait_for_version(client, "1")
        time.sleep(0.2)
    finally:
        stop.set()
        sender.join()
    # then every request succeeded with one version for all its rows, v1 then v2 then v1
    assert answers and all(status == 200 for status, _ in answers)
    assert all(len(versions) == 1 for _, versions in answers)
    sequence = [next(iter(v)) for _, v in answers]
    changes = [b for a, b in zip(sequence, sequence[1:], strict=False) if a != b]
    assert changes == ["2", "1"]
    assert client.get("/version").json()["swaps"] == 2


def test_a_failing_registry_keeps_the_current_model(swapping) -> None:
    client, registry = swapping
    # given the alias removed (the registry answers "no champion")
    del registry.aliases["champion"]
    calls = registry.calls
    deadline = time.monotonic() + 5
    while registry.calls < calls + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    # then the server keeps scoring with v1 and says why it did not move
    response = client.post("/invocations", json={"dataframe_records": [transaction(555_555)]})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["model_version"] == "1"
    assert "no @champion" in client.get("/version").json()["last_poll_error"]
