"""Helpers of the online feature tests (tests/serving): the pandas reference's comparison
(bench/pandas_features.py), a replay of rows through a state. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

from ml.serving.feed import serve_in_time_order
from ml.serving.memory import InMemoryFeatureState
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.state import FeatureState
from ml.serving.windows import FeatureWindows

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_reference() -> ModuleType:
    """Import bench/pandas_features.py (bench/ is a folder of scripts, not a package)."""
    name = "fraudops_bench_pandas_features"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "bench" / "pandas_features.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def replay(
    state: FeatureState, transactions: pd.DataFrame, reports: pd.DataFrame, batch_size: int = 1_000
) -> pd.DataFrame:
    """Serve ``transactions`` and ``reports`` (landing or silver columns) through ``state`` in
    time order; one row of features per transaction."""
    served = serve_in_time_order(
        state,
        TransactionRows.from_frame(transactions),
        ReportRows.from_frame(reports) if len(reports) else ReportRows.from_records([]),
        batch_size=batch_size,
    )
    return served.to_frame()


def fresh_state(windows: FeatureWindows) -> InMemoryFeatureState:
    return InMemoryFeatureState(windows)
