"""``ml replay --serve-url``'s scoring step (ml.serving.client.serve_landed_day): a landed day
goes through a running server in time order and its scores land in scoring.predictions, as
``ml score`` would write them (stub models and a real uvicorn server: tests/support/serving.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.serving import (
    DAY,
    StubRegistry,
    free_port,
    stub_service_builder,
    uvicorn_thread,
)

from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.tables import PREDICTION_COLUMNS, PREDICTIONS
from ml.serving.api.app import create_app
from ml.serving.client import serve_landed_day
from ml.serving.windows import FeatureWindows
from ml.world.landing import FRAUD_REPORTS, TRANSACTIONS


def land_day(root, rows: int = 30) -> pd.DataFrame:
    """A day of transactions on one card (each sees the earlier ones) and one fraud report."""
    transactions = pd.DataFrame(
        {
            "transaction_id": np.arange(5_000, 5_000 + rows),
            "tx_datetime": DAY + pd.to_timedelta(np.arange(rows) * 600, unit="s"),
            "customer_id": 7,
            "terminal_id": 3,
            "tx_amount": np.linspace(5, 400, rows).round(2),
        }
    )
    reports = pd.DataFrame(
        {
            "transaction_id": [5_000],
            "reported_at": [DAY + pd.Timedelta(hours=2)],
            "fraud_scenario": [1],
        }
    )
    for dataset, frame in ((TRANSACTIONS, transactions), (FRAUD_REPORTS, reports)):
        path = dataset.file_path(root, DAY.date())
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
    return transactions


def test_a_landed_day_is_scored_through_the_server(
    warehouse_env, windows: FeatureWindows, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a running server (champion v1) and a landed day
    monkeypatch.setenv("FRAUDOPS__SERVING__LOG_DIR", str(warehouse_env / "serving"))
    settings = load_settings()
    landing = warehouse_env / "landing"
    transactions = land_day(landing)
    app = create_app(
        settings, stub_service_builder(settings, windows, StubRegistry({"champion": "1"}))
    )
    with uvicorn_thread(app, free_port()) as url:
        # when the replay's scoring step sends it through the server
        result = serve_landed_day(Runtime.build(settings), url, landing, DAY.date())
        # then every transaction is scored by v1 and written to scoring.predictions
        with Runtime.build(settings).warehouse(read_only=True) as warehouse:
            written = warehouse.read(PREDICTIONS)
        again = serve_landed_day(Runtime.build(settings), url, landing, DAY.date())
    assert result.rows_read == result.rows_added == len(transactions)
    assert list(written.columns) == list(PREDICTION_COLUMNS)
    assert set(written["transaction_id"]) == set(transactions["transaction_id"])
    assert (written["model_version"] == "1").all() and written["score"].between(0, 1).all()
    assert result.alerts == int(written["is_alert"].sum())
    # ... and a second pass adds nothing (insert_new on transaction and version)
    assert again.rows_added == 0
