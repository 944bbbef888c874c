"""The pandas reference of the gold features (bench/pandas_features.py) and world edits for the
feature tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from ml.world.simulator import SimulatedWorld

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def load_reference() -> ModuleType:
    """Import bench/pandas_features.py (bench/ is a folder of scripts, not a package)."""
    name = "fraudops_bench_pandas_features"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH_DIR / "pandas_features.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def move_into_same_second(world: SimulatedWorld, pairs: int, seed: int = 0) -> None:
    """Give ``pairs`` transactions the timestamp of the card's previous transaction that day."""
    tx = world.transactions
    previous = tx.groupby(["customer_id", "tx_time_days"])["transaction_id"].shift()
    candidates = tx.index[previous.notna()]
    chosen = np.random.default_rng(seed).choice(candidates, size=pairs, replace=False)
    earlier = tx.set_index("transaction_id").loc[previous[chosen].astype("int64")]
    for column in ("tx_datetime", "tx_time_seconds"):
        tx.loc[chosen, column] = earlier[column].to_numpy()
