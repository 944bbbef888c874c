"""Fixtures of the online feature tests (helpers: serving_support.py)."""

from __future__ import annotations

import pytest
from support.serving import REPO_ROOT

from ml.serving.windows import FeatureWindows


@pytest.fixture(scope="session")
def windows() -> FeatureWindows:
    """The windows of the repository's dbt project (1/7/30 days, delay 7, look-back 37)."""
    return FeatureWindows.from_dbt_project(REPO_ROOT)
