"""Training reference distributions of the features, for drift monitoring.

For every feature, from the training data of a model version:

* **bins** — the deciles of the training values as inner edges, with open outer edges
  (``bin_lower`` of the first bin is ``-inf``, ``bin_upper`` of the last is ``+inf``); a value
  ``x`` falls in the bin with ``bin_lower < x <= bin_upper``. Repeated deciles (binary or
  low-cardinality features) are merged, so such features get fewer bins. ``expected_fraction``
  is the share of training values in the bin (PSI compares it with the scored data's share);
* **sample** — ``n`` evenly spaced quantiles of the training values (a compact stand-in for the
  training distribution, for the two-sample Kolmogorov-Smirnov statistic).

Both are written to ``scoring.feature_reference`` / ``scoring.feature_reference_sample`` keyed by
``model_name`` + ``model_version`` (re-running is a no-op) and logged as a JSON artifact.
:func:`assign_bins` is the binning rule, to be reused when computing actual fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.warehouse import Warehouse

BIN_KEYS = ("model_name", "model_version", "feature")
ARTIFACT_FILE = "feature_reference.json"


def decile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the unique ``1/bins .. (bins-1)/bins`` quantiles of ``values``.

    Quantiles are observed values (``inverted_cdf``), so a binary feature gets the edges 0 and 1
    rather than an interpolated 0.3."""
    probabilities = np.arange(1, bins) / bins
    inner = np.quantile(values, probabilities, method="inverted_cdf") if len(values) else np.array([])
    return np.unique(inner)


def assign_bins(values: Sequence[float] | np.ndarray, upper_edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Bin index of each value: the first bin whose ``bin_upper >= x`` (bins are ``(lower, upper]``).

    ``upper_edges`` are the bins' upper edges in order (the last one ``+inf``).
    """
    return np.searchsorted(np.asarray(upper_edges, dtype="float64"), np.asarray(values, dtype="float64"), side="left")


@dataclass(frozen=True)
class FeatureReference:
    """Reference distributions of one training set: ``bins`` and ``sample`` frames."""

    bins: pd.DataFrame  # feature, bin_index, bin_lower, bin_upper, expected_fraction
    sample: pd.DataFrame  # feature, value

    def for_model(self, model_name: str, model_version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The two warehouse tables' rows for a model version (columns of docs/architecture.md)."""
        keys = {"model_name": model_name, "model_version": str(model_version)}
        bins = self.bins.assign(**keys)[
            ["model_name", "model_version", "feature", "bin_index", "bin_lower", "bin_upper", "expected_fraction"]
        ]
        sample = self.sample.assign(**keys)[["model_name", "model_version", "feature", "value"]]
        return bins, sample

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (open edges as ``null``) for the MLflow artifact."""
        out: dict[str, Any] = {}
        for feature, rows in self.bins.groupby("feature", sort=False):
            out[feature] = {
                "bins": [
                    {
                        "bin_index": int(r.bin_index),
                        "bin_lower": None if np.isinf(r.bin_lower) else float(r.bin_lower),
                        "bin_upper": None if np.isinf(r.bin_upper) else float(r.bin_upper),
                        "expected_fraction": float(r.expected_fraction),
                    }
                    for r in rows.itertuples()
                ],
                "quantiles": self.sample.loc[self.sample["feature"] == feature, "value"].tolist(),
            }
        return out


def compute_reference(
    frame: pd.DataFrame, features: Sequence[str], bins: int = 10, quantiles: int = 1000
) -> FeatureReference:
    """Decile bins with expected fractions and a ``quantiles``-point sample of every feature."""
    bin_rows: list[dict[str, Any]] = []
    sample_rows: list[pd.DataFrame] = []
    for feature in features:
        values = frame[feature].to_numpy(dtype="float64")
        values = values[~np.isnan(values)]
        if not len(values):
            raise ValueError(f"feature {feature} has no values in the training data")
        inner = decile_edges(values, bins)
        lower = np.concatenate([[-np.inf], inner])
        upper = np.concatenate([inner, [np.inf]])
        counts = np.bincount(assign_bins(values, upper), minlength=len(upper))
        for i, (lo, hi, count) in enumerate(zip(lower, upper, counts, strict=True)):
            bin_rows.append(
                {
                    "feature": feature,
                    "bin_index": i,
                    "bin_lower": float(lo),
                    "bin_upper": float(hi),
                    "expected_fraction": count / len(values),
                }
            )
        sample_rows.append(
            pd.DataFrame({"feature": feature, "value": np.quantile(values, np.linspace(0, 1, quantiles))})
        )
    bins_frame = pd.DataFrame(bin_rows).astype({"bin_index": "int32", "bin_lower": "float64", "bin_upper": "float64"})
    return FeatureReference(bins=bins_frame, sample=pd.concat(sample_rows, ignore_index=True))


def write_reference(
    wh: Warehouse,
    reference: FeatureReference,
    model_name: str,
    model_version: str,
    table: str,
) -> tuple[int, int]:
    """Insert the reference of a model version into ``table`` and ``<table>_sample`` (rows that
    are there already are kept); returns the rows added to each."""
    bins, sample = reference.for_model(model_name, model_version)
    added_bins = wh.write(bins, table, mode="insert_new", keys=[*BIN_KEYS, "bin_index"])
    added_sample = wh.write(sample, f"{table}_sample", mode="insert_new", keys=list(BIN_KEYS))
    return added_bins, added_sample
