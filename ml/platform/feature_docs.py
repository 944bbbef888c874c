"""What each model feature means, read from its one place of definition.

* the **label** (plain language, for investigators): the dbt seed ``seeds/feature_labels.csv``
  (``reference.feature_labels`` in the warehouse; gold.fraud_alerts joins it);
* the **definition** (precise): the column description of ``gold.transaction_features`` in
  ``models/marts/fraud/_fraud__models.yml`` (what ``dbt docs`` shows).

The model card (ml/model_card.py) reads both from the dbt project folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

LABELS_SEED = Path("seeds") / "feature_labels.csv"
FEATURE_MODELS_YML = Path("models") / "marts" / "fraud" / "_fraud__models.yml"
FEATURE_MODEL = "transaction_features"
#: How the gold model's descriptions mark its feature columns.
FEATURE_PREFIXES = ("Feature:", "Extra feature")


@dataclass(frozen=True)
class FeatureDoc:
    feature: str
    label: str
    definition: str
    data_type: str


def feature_labels(project_dir: Path | str) -> dict[str, str]:
    """``{feature: label}`` from the seed, in its order."""
    with (Path(project_dir) / LABELS_SEED).open(newline="") as handle:
        return {row["feature"]: row["label"] for row in csv.DictReader(handle)}


def feature_columns(project_dir: Path | str) -> dict[str, dict[str, str]]:
    """The feature columns of the gold model (``{name: {"description", "data_type"}}``)."""
    doc = yaml.safe_load((Path(project_dir) / FEATURE_MODELS_YML).read_text())
    model = next(m for m in doc["models"] if m["name"] == FEATURE_MODEL)
    return {
        c["name"]: {
            "description": " ".join(str(c.get("description", "")).split()),
            "data_type": c.get("data_type", ""),
        }
        for c in model["columns"]
        if str(c.get("description", "")).startswith(FEATURE_PREFIXES)
    }


def feature_docs(project_dir: Path | str, features: list[str]) -> list[FeatureDoc]:
    """Label and definition of each of ``features`` (empty strings where one is missing)."""
    labels, columns = feature_labels(project_dir), feature_columns(project_dir)
    return [
        FeatureDoc(
            feature=f,
            label=labels.get(f, ""),
            definition=columns.get(f, {}).get("description", ""),
            data_type=columns.get(f, {}).get("data_type", ""),
        )
        for f in features
    ]
