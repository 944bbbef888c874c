"""Fixtures of the online feature tests (helpers: tests/support/serving.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.serving import REPO_ROOT, StubRegistry, stub_service_builder, wait_ready

from ml.platform.settings import load_settings
from ml.serving.api.app import create_app
from ml.serving.windows import FeatureWindows


@pytest.fixture(scope="session")
def windows() -> FeatureWindows:
    """The windows of the repository's dbt project (1/7/30 days, delay 7, look-back 37)."""
    return FeatureWindows.from_dbt_project(REPO_ROOT)


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
