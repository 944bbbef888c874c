"""`ml run`, the job behind `make run`, end to end on a small simulated world, starting from what a
fresh clone has: no landing files, no warehouse (not even its folder), no model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.tables import PREDICTIONS

pytestmark = pytest.mark.slow  # simulate, two dbt builds, docs, train, score (~2 min)

SMALL_WORLD = {"CUSTOMERS": "300", "TERMINALS": "600", "DAYS": "50", "START": "2018-04-01"}
# a small world's model need not reach the default minimums; the no-regression rule is moot
# for a first model
LENIENT = {"MIN_AVERAGE_PRECISION": "0", "MIN_ROC_AUC": "0", "MIN_CARD_PRECISION_AT_100": "0"}


def test_ml_run_completes_the_loop_from_a_fresh_clone(mlflow_settings, tmp_path: Path, monkeypatch):
    # given a warehouse path whose folder does not exist (git-ignored: absent from a fresh clone)
    warehouse = tmp_path / "fresh" / "warehouse" / "fraudops.duckdb"
    monkeypatch.setenv("FRAUDOPS_DUCKDB_PATH", str(warehouse))
    monkeypatch.chdir(tmp_path)  # the model card goes to ./reports
    for key, value in SMALL_WORLD.items():
        monkeypatch.setenv(f"FRAUDOPS__SIMULATION__{key}", value)
    for key, value in LENIENT.items():
        monkeypatch.setenv(f"FRAUDOPS__VALIDATION__{key}", value)

    # when `ml run` runs
    result = CliRunner().invoke(app, ["run"])

    # then every step ran, in order, and the summary says where to look
    assert result.exit_code == 0, result.output[-3000:]
    steps = [
        "simulate",
        "dbt build medallion",
        "dbt docs generate",
        "ml train",
        "ml validate",
        "ml model-card",
        "ml promote",
        "ml score",
        "dbt build downstream",
    ]
    positions = [result.output.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), result.output
    assert "mlflow ui --backend-store-uri" in result.output and "dbt docs serve" in result.output
    # and the promoted version's model card was written (and its path printed) before promotion
    (card,) = (tmp_path / "reports").glob("model_card_*_v*.html")
    assert card.name in " ".join(result.output.split()) and "Model card" in card.read_text()
    # and the champion scored every gold transaction, whose predictions fed the downstream marts
    settings = load_settings()
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        transactions = wh.scalar(f"select count(*) from {settings.model.feature_table}")
        predictions = wh.scalar(f"select count(distinct transaction_id) from {PREDICTIONS}")
        alerts_days = wh.scalar("select count(distinct alert_date) from gold.fraud_alerts")
        performance_days = wh.scalar("select count(*) from gold.model_performance_daily")
        drift_rows = wh.scalar("select count(*) from gold.feature_drift_daily")
    assert transactions > 10_000 and predictions == transactions
    assert alerts_days > 0 and performance_days > 0 and drift_rows > 0
    assert (
        Path(tmp_path / "target") / "index.html"
    ).is_file()  # the lineage site (DBT_TARGET_PATH)
