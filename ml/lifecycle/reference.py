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
``model_name`` + ``model_version`` (re-running is a no-op) by :func:`ensure_feature_reference`,
the one writer, and logged as a JSON artifact.
:func:`assign_bins` is the binning rule, to be reused when computing actual fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.platform.errors import ModelRegistryError, first_line
from ml.platform.runtime import Runtime
from ml.platform.tables import FEATURE_REFERENCE, FEATURE_REFERENCE_SAMPLE
from ml.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

BIN_KEYS = ("model_name", "model_version", "feature")
ARTIFACT_FILE = "feature_reference.json"


def decile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the unique ``1/bins .. (bins-1)/bins`` quantiles of ``values``.

    Quantiles are observed values (``inverted_cdf``), so a binary feature gets the edges 0 and 1
    rather than an interpolated 0.3."""
    probabilities = np.arange(1, bins) / bins
    inner = (
        np.quantile(values, probabilities, method="inverted_cdf") if len(values) else np.array([])
    )
    return np.unique(inner)


def assign_bins(
    values: Sequence[float] | np.ndarray, upper_edges: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Bin index of each value: the first bin whose ``bin_upper >= x`` (bins are ``(lower, upper]``).

    ``upper_edges`` are the bins' upper edges in order (the last one ``+inf``).
    """
    return np.searchsorted(
        np.asarray(upper_edges, dtype="float64"), np.asarray(values, dtype="float64"), side="left"
    )


@dataclass(frozen=True)
class FeatureReference:
    """Reference distributions of one training set: ``bins`` and ``sample`` frames."""

    bins: pd.DataFrame  # feature, bin_index, bin_lower, bin_upper, expected_fraction
    sample: pd.DataFrame  # feature, value

    def for_model(self, model_name: str, model_version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The two warehouse tables' rows for a model version (columns of docs/architecture.md)."""
        keys = {"model_name": model_name, "model_version": str(model_version)}
        bins = self.bins.assign(**keys)[
            [
                "model_name",
                "model_version",
                "feature",
                "bin_index",
                "bin_lower",
                "bin_upper",
                "expected_fraction",
            ]
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
            pd.DataFrame(
                {"feature": feature, "value": np.quantile(values, np.linspace(0, 1, quantiles))}
            )
        )
    bins_frame = pd.DataFrame(bin_rows).astype(
        {"bin_index": "int32", "bin_lower": "float64", "bin_upper": "float64"}
    )
    return FeatureReference(bins=bins_frame, sample=pd.concat(sample_rows, ignore_index=True))


def _write_reference(
    wh: Warehouse, reference: FeatureReference, model_name: str, model_version: str
) -> tuple[int, int]:
    """Insert the reference of a model version (rows that are there already are kept); returns
    the rows added to each table."""
    bins, sample = reference.for_model(model_name, model_version)
    added_bins = wh.write(bins, FEATURE_REFERENCE, mode="insert_new", keys=[*BIN_KEYS, "bin_index"])
    added_sample = wh.write(
        sample, FEATURE_REFERENCE_SAMPLE, mode="insert_new", keys=list(BIN_KEYS)
    )
    return added_bins, added_sample


def reference_from_artifact(doc: dict[str, Any]) -> FeatureReference:
    """The inverse of ``FeatureReference.to_dict`` (the ``features`` of ml train's
    ``feature_reference.json``): open edges (``null``) become -inf / +inf."""
    bins: list[dict[str, Any]] = []
    samples: list[pd.DataFrame] = []
    for feature, entry in doc.items():
        for b in entry["bins"]:
            bins.append(
                {
                    "feature": feature,
                    "bin_index": int(b["bin_index"]),
                    "bin_lower": -math.inf if b["bin_lower"] is None else float(b["bin_lower"]),
                    "bin_upper": math.inf if b["bin_upper"] is None else float(b["bin_upper"]),
                    "expected_fraction": float(b["expected_fraction"]),
                }
            )
        samples.append(
            pd.DataFrame(
                {"feature": feature, "value": np.asarray(entry["quantiles"], dtype="float64")}
            )
        )
    if not bins:
        raise ValueError("the reference artifact holds no feature")
    frame = pd.DataFrame(bins).astype(
        {"bin_index": "int32", "bin_lower": "float64", "bin_upper": "float64"}
    )
    return FeatureReference(bins=frame, sample=pd.concat(samples, ignore_index=True))


def _quoted(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _reference_rows(wh: Warehouse, name: str, version: str) -> int:
    """Rows of a version's reference in both reference tables (0 if either lacks it)."""
    counts = []
    for relation in (FEATURE_REFERENCE, FEATURE_REFERENCE_SAMPLE):
        if not wh.exists(relation):
            return 0
        counts.append(
            int(
                wh.scalar(
                    f"select count(*) from {relation} "
                    f"where model_name = {_quoted(name)} and model_version = {_quoted(version)}"
                )
                or 0
            )
        )
    return min(counts)


def ensure_feature_reference(
    rt: Runtime, version: ModelVersion, reference: FeatureReference | None = None
) -> tuple[int, int]:
    """The one writer of ``scoring.feature_reference*``: make sure they hold the version's
    training reference. ``ml train`` passes the reference it just computed; ``ml promote`` and
    ``ml rollback`` read it from the run's ``feature_reference.json`` artifact when the warehouse
    lacks it (another warehouse, a rebuilt one). Returns the rows added (``(0, 0)`` if it was there).
    """
    name, number = version.name, str(version.version)
    with rt.warehouse() as wh:
        if _reference_rows(wh, name, number) > 0:
            return 0, 0
        if reference is None:
            reference = _reference_of_run(version)
        return _write_reference(wh, reference, name, number)


def _reference_of_run(version: ModelVersion) -> FeatureReference:
    import mlflow
    from mlflow.exceptions import MlflowException

    artifact = f"runs:/{version.run_id}/{ARTIFACT_FILE}"
    try:
        return reference_from_artifact(mlflow.artifacts.load_dict(artifact)["features"])
    except (MlflowException, OSError, KeyError, TypeError, ValueError) as exc:
        raise ModelRegistryError(
            f"{version.name} v{version.version} has no training reference in {FEATURE_REFERENCE} nor a "
            f"readable {artifact} ({first_line(exc)}); train a new version with ml train"
        ) from None
