"""Helpers of the replay tests (tests/operations): a tiny world's settings, the warehouse tables a
replay writes and how to compare two replays. The ``replay_root`` fixture is in
tests/operations/conftest.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import yaml

from ml.platform.runtime import Runtime
from ml.platform.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2018, 4, 13)  # first replayed day; the warm-up is 2018-04-01..04-12
END = dt.date(2018, 4, 15)
DAYS = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
BOOTSTRAP_DAY = START - dt.timedelta(days=1)


def settings_file(root: Path, **sections: dict) -> Path:
    """A settings file for a tiny replay whose warehouse, landing, MLflow and dbt files are under ``root``."""
    doc = {
        "dbt": {"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT), "target": "local"},
        "simulation": {
            "customers": 150,
            "terminals": 300,
            "days": 15,
            "seed": 3,
            "label_delay_days": 2,
        },
        "landing": {"root": str(root / "landing")},
        "mlflow": {
            "tracking_uri": f"sqlite:///{root}/mlflow.db",
            "artifact_location": str(root / "artifacts"),
            "experiment": "replay-test",
        },
        "training": {
            "train_days": 3,
            "delay_days": 2,
            "test_days": 2,
            "candidates": ["logistic_regression"],
            "importance_max_rows": 500,
            "importance_repeats": 1,
            "reference_quantiles": 100,
        },
        # a tiny world: accept any challenger that is not worse than the champion by 1
        "validation": {
            "min_average_precision": 0,
            "min_roc_auc": 0,
            "min_card_precision_at_100": 0,
            "max_regression": 1,
        },
        "replay": {"warmup_days": 12, "end": END.isoformat()},
        "retraining": {"every_days": 0, "psi_threshold": None, "min_average_precision": None},
    }
    for section, values in sections.items():
        doc[section] = {**doc.get(section, {}), **values}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "settings.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def tables(settings: Settings) -> dict[str, pd.DataFrame]:
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        return {
            "predictions": wh.read("scoring.predictions"),
            "events": wh.read("scoring.model_events"),
            "features": wh.read("gold.transaction_features", ["transaction_id", "tx_date"]),
            "bronze": wh.read(
                "bronze.stg_landing__transactions", ["transaction_id", "_source_file"]
            ),
            "bronze_reports": wh.read(
                "bronze.stg_landing__fraud_reports", ["transaction_id", "_source_file"]
            ),
        }


def event_list(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(business day, event, version) of every event, in the order they were recorded."""
    frame = tables["events"].sort_values("event_at", kind="stable")
    return [
        (pd.Timestamp(d).date().isoformat(), e, str(v))
        for d, e, v in zip(frame["event_date"], frame["event"], frame["model_version"], strict=True)
    ]


def assert_no_duplicates(tables: dict[str, pd.DataFrame]) -> None:
    assert not tables["predictions"].duplicated(["transaction_id", "model_version"]).any()
    assert tables["events"]["event_id"].is_unique
    assert tables["bronze"]["transaction_id"].is_unique
    assert tables["bronze_reports"]["transaction_id"].is_unique
