"""ml.reference: decile bins with open outer edges, quantile sample, idempotent warehouse write."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ml.lifecycle.reference import assign_bins, compute_reference, ensure_feature_reference
from ml.platform.runtime import Runtime
from ml.platform.tables import (
    FEATURE_REFERENCE,
    FEATURE_REFERENCE_SAMPLE,
    SCORING_SOURCE_COLUMNS,
)


@pytest.fixture
def training() -> pd.DataFrame:
    # 1..100 (continuous) and a binary flag that is 1 for 30 % of the rows
    return pd.DataFrame({"amount": np.arange(1, 101, dtype=float), "night": [1] * 30 + [0] * 70})


def test_continuous_feature_gets_ten_equal_bins_with_open_outer_edges(training):
    ref = compute_reference(training, ["amount"], bins=10, quantiles=11)
    bins = ref.bins
    assert bins["bin_index"].tolist() == list(range(10))
    assert bins["bin_lower"].iloc[0] == -np.inf and bins["bin_upper"].iloc[-1] == np.inf
    assert bins["bin_upper"].iloc[:-1].tolist() == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert (bins["bin_lower"].iloc[1:].to_numpy() == bins["bin_upper"].iloc[:-1].to_numpy()).all()
    assert bins["expected_fraction"].tolist() == pytest.approx([0.1] * 10)
    assert ref.sample["value"].tolist() == pytest.approx(np.linspace(1, 100, 11))


def test_binary_feature_merges_repeated_deciles(training):
    ref = compute_reference(training, ["night"])
    assert ref.bins[["bin_lower", "bin_upper"]].values.tolist() == [
        [-np.inf, 0.0],
        [0.0, 1.0],
        [1.0, np.inf],
    ]
    assert ref.bins["expected_fraction"].tolist() == pytest.approx([0.7, 0.3, 0.0])


def test_assign_bins_uses_lower_open_upper_closed_intervals():
    upper = [0.0, 1.0, np.inf]
    assert assign_bins([-5, 0, 0.5, 1, 1.01, 1e9], upper).tolist() == [0, 0, 1, 1, 2, 2]


def test_reference_rows_follow_the_architecture_columns(training):
    bins, sample = compute_reference(training, ["amount", "night"]).for_model("fraud_detector", "3")
    # the columns, in order, of the tables dbt declares (ml.platform.tables, dbt_project.yml)
    assert list(bins.columns) == list(SCORING_SOURCE_COLUMNS["feature_reference"])
    assert list(sample.columns) == list(SCORING_SOURCE_COLUMNS["feature_reference_sample"])
    assert set(bins["model_version"]) == {"3"}
    assert bins.groupby("feature")["expected_fraction"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_the_reference_is_written_once_per_model_version(mlflow_settings, training):
    ref = compute_reference(training, ["amount", "night"], quantiles=50)
    rt = Runtime.build(mlflow_settings)

    def version(number: str) -> SimpleNamespace:
        return SimpleNamespace(name="fraud_detector", version=number, run_id="no-run-needed")

    first = ensure_feature_reference(rt, version("1"), ref)
    again = ensure_feature_reference(rt, version("1"), ref)
    other = ensure_feature_reference(rt, version("2"), ref)
    with rt.warehouse(read_only=True) as wh:
        stored = wh.read(FEATURE_REFERENCE)
        stored_sample = wh.read(FEATURE_REFERENCE_SAMPLE)
    assert first == (13, 100) and again == (0, 0) and other == (13, 100)
    assert len(stored) == 26 and len(stored_sample) == 200
    assert np.isinf(stored["bin_lower"]).sum() == 4  # one open lower edge per feature and version
