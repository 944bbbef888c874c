"""Fixtures of the lifecycle tests: one real training run per session, a registry world per test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.registry import Reg, Trained, add_trained_version, build_reg, build_trained

from ml.lifecycle.promote import promote
from ml.lifecycle.validate import validate


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, feature_frame: pd.DataFrame) -> Trained:
    """One real training run (logistic regression), shared by the registry and score tests."""
    return build_trained(tmp_path_factory, feature_frame)


@pytest.fixture
def reg(
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Reg:
    """A test's own registry world (support/registry.py)."""
    return build_reg(trained, tmp_path, monkeypatch, request)


@pytest.fixture
def champion(reg: Reg) -> str:
    """The trained model, validated and promoted as the champion of ``reg.name``."""
    version = add_trained_version(reg)
    assert validate(reg.rt).passed
    promote(reg.rt)
    return version
