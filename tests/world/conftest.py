"""Fixtures of the simulator tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ml.cli import app


@pytest.fixture
def simulate_cli(isolated_cli: Path) -> Callable[..., Result]:
    """``ml simulate ARGS`` through typer's CliRunner, run in tmp_path with no project settings
    file or environment override leaking in (conftest.isolated_cli); ``env`` for the runner."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, ["simulate", *args], env=env)

    return run
