"""Settings of a tiny replay world (tests/operations): everything it writes under one folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2018, 4, 13)  # first replayed day; the warm-up is 2018-04-01..04-12
END = dt.date(2018, 4, 15)


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
