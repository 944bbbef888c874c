"""The scoring server end to end on a simulated world: no skew through HTTP, the inference log
in dbt, restart after kill -9, start-up refusals.

One world per module: 40 simulated days land through day D-1, dbt builds them, a logistic
regression on gold becomes the champion; the app (in process, FastAPI's TestClient) serves day
D's transactions and receives its fraud reports in time order, in requests of several rows.
Then day D lands, dbt builds it with the serving models, ``ml score`` scores it in batch: every
served transaction must have gold's features and ``ml score``'s score (floats within 1e-9), and
gold.serving_predictions one row for it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from support.serving import (
    REPO_ROOT,
    free_port,
    load_reference,
    register_champion,
    serving_env,
    start_server,
    wait_ready,
)
from typer.testing import CliRunner

from ml.cli import app as cli
from ml.lifecycle.score import score
from ml.platform.runtime import Runtime
from ml.platform.settings import SimulationSettings, load_settings
from ml.platform.tables import PREDICTIONS
from ml.serving.api.app import create_app
from ml.serving.bootstrap import bootstrap_from_warehouse
from ml.serving.client import ServingClient, post_in_time_order
from ml.serving.feed import serve_in_time_order
from ml.serving.inference_log import read_log
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.server import build_service
from ml.serving.windows import FeatureWindows
from ml.world.landing import FRAUD_REPORTS, TRANSACTIONS, write_landing
from ml.world.simulator import simulate

pytestmark = pytest.mark.slow

DAYS = 40
BATCH = 25  # transactions per request


@dataclass
class ServedDay:
    root: Path
    env: dict[str, str]
    day: dt.date
    version: str
    transactions: pd.DataFrame  # day D's landing files
    reports: pd.DataFrame
    served: pd.DataFrame  # what the server answered, features included
    gold: pd.DataFrame  # day D in gold.transaction_features, built after D landed
    batch: pd.DataFrame  # day D's rows of scoring.predictions (ml score)
    serving_predictions: pd.DataFrame
    serving_health: pd.DataFrame
    dbt_test_ok: bool
    dbt_test_output: str


@pytest.fixture(scope="module")
def served_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDay]:
    root = tmp_path_factory.mktemp("serve-e2e")
    env = serving_env(root)
    world = simulate(SimulationSettings(customers=400, terminals=300, days=DAYS, seed=11))
    day = world.end
    landing = root / "landing"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("FRAUDOPS_TARGET", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            patch.delenv(name, raising=False)
        rt = Runtime.build(load_settings())
        write_landing(world, landing, to_day=day - dt.timedelta(days=1))
        rt.dbt(["run", "--select", "+transaction_features"])
        with rt.warehouse(read_only=True) as warehouse:
            gold_before = warehouse.read("gold.transaction_features")
        version = register_champion(rt, gold_before)

        incoming = root / "incoming"  # day D's files, as the bank's systems send them live
        write_landing(world, incoming, from_day=day, to_day=day)
        transactions = pq.read_table(TRANSACTIONS.file_path(incoming, day)).to_pandas()
        reports = pq.read_table(FRAUD_REPORTS.file_path(incoming, day)).to_pandas()
        app = create_app(rt.settings, lambda: build_service(rt))
        with TestClient(app) as http:
            wait_ready(http, timeout=120)
            served = post_in_time_order(
                ServingClient(client=http), transactions, reports, BATCH, include_features=True
            )
        write_landing(world, landing, from_day=day, to_day=day)
        rt.dbt(["run", "--select", "+transaction_features", "tag:serving"])
        score(rt, start=day, end=day)
        test = rt.dbt(
            ["test", "--select", "tag:serving", "test_serving_predictions__equal_batch_scores"],
            check=False,
        )
        with rt.warehouse(read_only=True) as warehouse:
            gold = warehouse.read(
                "gold.transaction_features", date_column="tx_date", start=day, end=day
            )
            batch = warehouse.read(PREDICTIONS)
            serving_predictions = warehouse.read("gold.serving_predictions")
            serving_health = warehouse.read("gold.serving_health_daily")
    yield ServedDay(
        root,
        env,
        day,
        version,
        transactions,
        reports,
        served,
        gold,
        batch.loc[batch["transaction_id"].isin(gold["transaction_id"])],
        serving_predictions,
        serving_health,
        test.returncode == 0,
        test.stdout[-3000:],
    )


def test_served_features_equal_the_gold_table(served_day: ServedDay) -> None:
    # given day D served through HTTP in time order (requests of 25 rows, reports between)
    windows = FeatureWindows.from_dbt_project(REPO_ROOT)
    served = served_day.served
    # then every transaction of D was answered once, with gold's 21 features
    assert len(served) == len(served_day.transactions) == len(served_day.gold) > 400
    comparison = load_reference().compare(served, served_day.gold, list(windows.columns()))
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"


def test_served_scores_equal_the_batch_scores(served_day: ServedDay) -> None:
    # given the served scores and ml score's for the same model version
    merged = served_day.served.merge(
        served_day.batch, on=["transaction_id", "model_version"], suffixes=("_online", "_batch")
    )
    # then they agree for every transaction within 1e-9, and so do the alerts
    assert len(merged) == len(served_day.served)
    assert (merged["model_version"] == served_day.version).all()
    np.testing.assert_allclose(merged["score_online"], merged["score_batch"], rtol=0, atol=1e-9)
    assert (merged["is_alert_online"] == merged["is_alert_batch"]).all()


def test_the_inference_log_is_modelled_in_gold(served_day: ServedDay) -> None:
    # given the inference log built by dbt after the server stopped (flushed at shutdown)
    predictions = served_day.serving_predictions
    health = served_day.serving_health
    # then gold.serving_predictions has one row per served transaction, with its score
    assert predictions["transaction_id"].is_unique
    assert set(predictions["transaction_id"]) == set(served_day.served["transaction_id"])
    merged = predictions.merge(served_day.served, on="transaction_id", suffixes=("", "_http"))
    np.testing.assert_array_equal(merged["score"], merged["score_http"])
    # ... gold.serving_health_daily counts the requests and their latencies
    requests = -(-len(served_day.served) // BATCH)  # at least one request per BATCH rows
    assert health["scored_transactions"].sum() == len(served_day.served)
    assert health["requests"].sum() >= requests and health["error_requests"].sum() == 0
    assert (health["latency_p50_ms"] <= health["latency_p99_ms"]).all()
    # ... and the dbt tests pass, online score = batch score (1e-9) among them
    assert served_day.dbt_test_ok, served_day.dbt_test_output


def test_a_server_killed_restarts_with_the_same_state(served_day: ServedDay) -> None:
    # given a server (a real process) bootstrapped from the warehouse built through D, with an
    # inference log of its own, that serves the first transactions of day D + 1 and is killed
    log_dir = str(served_day.root / "restart-log")
    env = {
        **served_day.env,
        "FRAUDOPS_SERVING_LOG_DIR": log_dir,
        "FRAUDOPS__SERVING__LOG_DIR": log_dir,
    }
    nxt = next_day(served_day.transactions, served_day.day + dt.timedelta(days=1))
    first, last = nxt.iloc[:-1], nxt.iloc[-1:]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(env, port, served_day.root)
    try:
        post_in_time_order(ServingClient(url), first, served_day.reports.iloc[:0], batch_size=5)
        wait_logged(Path(env["FRAUDOPS_SERVING_LOG_DIR"]), len(first))
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        # when it is started again and scores the next transaction
        server = start_server(env, port, served_day.root)
        after_crash = ServingClient(url).score(last, include_features=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    # then its features are those of a state that never crashed
    windows = FeatureWindows.from_dbt_project(REPO_ROOT)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in served_day.env.items():
            patch.setenv(name, value)
        with Runtime.build(load_settings()).warehouse(read_only=True) as warehouse:
            state = bootstrap_from_warehouse(warehouse, windows)
    no_reports = ReportRows.from_records([])
    serve_in_time_order(state, TransactionRows.from_frame(first), no_reports)
    expected = state.features(TransactionRows.from_frame(last)).to_frame()
    comparison = load_reference().compare(after_crash, expected, list(windows.columns()))
    assert comparison.equal, f"{comparison.summary()}\n{comparison.examples.T}"
    assert after_crash["customer_id_nb_tx_1day_window"].iloc[0] >= 2  # it saw the first ones


def next_day(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Day D's first 40 transactions moved to ``day`` on one card (new ids): the card's later
    windows hold the earlier ones, so a lost transaction shows."""
    moved = transactions.sort_values("tx_datetime").head(40).copy()
    moved["tx_datetime"] = pd.Timestamp(day) + pd.to_timedelta(np.arange(len(moved)) * 60, "s")
    moved["transaction_id"] = transactions["transaction_id"].max() + 1 + np.arange(len(moved))
    moved["customer_id"] = moved["customer_id"].iloc[0]
    return moved.reset_index(drop=True)


def wait_logged(folder: Path, rows: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(read_log(folder)) < rows:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(read_log(folder))} of {rows} rows logged")
        time.sleep(0.1)


def test_serve_refuses_to_start_without_a_champion(served_day: ServedDay) -> None:
    # given a model name with no version in the registry
    env = {**served_day.env, "FRAUDOPS__MODEL__NAME": "no_such_model"}
    # when ml serve starts
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port())], env=env)
    # then it stops with one line saying what to do
    assert result.exit_code == 1
    assert "no no_such_model@champion" in result.output and "ml promote" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_to_start_without_a_warehouse(served_day: ServedDay) -> None:
    env = {**served_day.env, "FRAUDOPS_DUCKDB_PATH": str(served_day.root / "missing.duckdb")}
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port())], env=env)
    assert result.exit_code == 1
    assert "does not exist yet" in result.output and "Traceback" not in result.output
