"""One plain-language label per model feature, in one place (seeds/feature_labels.csv)."""

from __future__ import annotations

from support.common import REPO_ROOT

from ml.platform.feature_docs import feature_columns, feature_docs, feature_labels
from ml.platform.settings import EXTRA_FEATURES, FEATURES


def test_the_seed_labels_exactly_the_model_features():
    # given the seed, the settings' features and the gold model's documented feature columns
    labels = feature_labels(REPO_ROOT)
    documented = feature_columns(REPO_ROOT)
    # then all three name the same features, in the same order as the settings
    assert list(labels) == [*FEATURES, *EXTRA_FEATURES]
    assert set(documented) == set(labels)
    # and each label is present, short and unique
    assert all(0 < len(label) <= 60 for label in labels.values())
    assert len(set(labels.values())) == len(labels)


def test_feature_docs_join_label_and_definition():
    docs = {d.feature: d for d in feature_docs(REPO_ROOT, ["tx_amount", "not_a_feature"])}
    assert docs["tx_amount"].label == "Transaction amount"
    assert docs["tx_amount"].definition.startswith("Feature: the amount of the transaction")
    assert docs["tx_amount"].data_type == "double"
    assert docs["not_a_feature"].label == docs["not_a_feature"].definition == ""
