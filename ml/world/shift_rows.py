"""Rows of the simulated transactions (dicts of time-ordered numpy arrays) as the scheduled
shifts of the world add to them: day keys, report delays, an order-keeping merge."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.platform.settings import SimulationSettings
from ml.world.handbook import SECONDS_PER_DAY

# Where a row comes from, to merge without reordering the base transactions.
BASE, ACTIVITY, CARD_TEST = 0, 1, 2
#: The smallest amount a shifted genuine amount keeps (a cent).
SMALLEST_AMOUNT = 0.01


def day_of(time: np.ndarray) -> np.ndarray:
    return time // SECONDS_PER_DAY


def day_table(days: np.ndarray, ids: np.ndarray, column: str) -> pd.DataFrame:
    return pd.DataFrame({"day": days.astype(np.int64), column: ids.astype(np.int64)})


def report_delays(rng: np.random.Generator, n: int, settings: SimulationSettings) -> np.ndarray:
    """Report delays in seconds, drawn as the simulator's (U{0 .. label_delay_days days})."""
    return rng.integers(0, settings.label_delay_days * SECONDS_PER_DAY, size=n, endpoint=True)


def merge(rows: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Both sets of rows in time order; on equal times the existing rows first, in their order."""
    merged = {
        name: np.concatenate([values, extra[name].astype(values.dtype)])
        for name, values in rows.items()
    }
    position = np.arange(len(merged["time"]))
    order = np.lexsort((position, merged["origin"], merged["time"]))
    return {name: values[order] for name, values in merged.items()}
