"""Shared pytest fixtures: isolated settings (warehouse + MLflow under tmp_path) and a small,
generated gold feature table.

* ``warehouse_env`` — points the dbt profile (FRAUDOPS_DUCKDB_PATH, FRAUDOPS_LANDING_ROOT) and
  the settings file at tmp_path, so nothing touches the repository's warehouse.
* ``mlflow_settings`` — Settings with MLflow tracking at ``sqlite:///{tmp_path}/mlflow.db`` and
  artifacts under tmp_path (dbt project/profiles = the repository).
* ``feature_table`` — writes :func:`make_feature_frame` into ``gold.transaction_features`` of the
  tmp warehouse (through ml.warehouse) and returns the frame.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import Chromium, find_chromium

from ml.settings import EXTRA_FEATURES, FEATURES, Settings, load_settings
from ml.warehouse import open_warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
FEATURE_TABLE = "gold.transaction_features"


def make_feature_frame(
    customers: int = 300,
    terminals: int = 200,
    days: int = 45,
    start: dt.date = dt.date(2018, 4, 1),
    seed: int = 0,
    label_delay_days: int = 7,
) -> pd.DataFrame:
    """A small gold feature table with the contract's columns and learnable frauds.

    Handbook-like world: customers with their own spending habits use nearby terminals;
    frauds are large amounts, compromised terminals (all their transactions for 10 days) and
    compromised customers (a third of their transactions, amount x5, for 7 days); each fraud is
    reported up to ``label_delay_days`` after the transaction. The window features follow the
    contract (customer windows on (t - n days, t], terminal windows delayed by 7 days, terminal risk
    counting only frauds reported by the transaction day).
    """
    rng = np.random.default_rng(seed)
    mean_amount = rng.uniform(5, 100, customers)
    tx_per_day = rng.uniform(0, 4, customers)
    home = rng.integers(0, terminals, customers)
    n_tx = rng.poisson(np.tile(tx_per_day, days))
    day_index = np.repeat(np.repeat(np.arange(days), customers), n_tx)
    customer = np.repeat(np.tile(np.arange(customers), days), n_tx)
    n = len(customer)
    seconds = rng.normal(43_200, 20_000, n).astype("int64") % 86_400
    tx_datetime = pd.Timestamp(start) + pd.to_timedelta(day_index, unit="D") + pd.to_timedelta(seconds, unit="s")
    terminal = (home[customer] + rng.integers(0, 10, n)) % terminals
    amount = np.abs(rng.normal(mean_amount[customer], mean_amount[customer] / 2)).round(2)
    fraud = amount > 220
    for d in range(0, days, 5):  # a compromised terminal every 5 days, for 10 days
        t = rng.integers(0, terminals)
        fraud |= (terminal == t) & (day_index >= d) & (day_index < d + 10)
    for d in range(0, days, 2):  # a compromised customer every other day, for 7 days
        c = rng.integers(0, customers)
        hit = (customer == c) & (day_index >= d) & (day_index < d + 7) & (rng.random(n) < 1 / 3)
        amount[hit] = (amount[hit] * 5).round(2)
        fraud |= hit
    reported = tx_datetime + pd.to_timedelta(rng.integers(0, label_delay_days * 86_400, n), unit="s")
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "tx_datetime": tx_datetime,
            "tx_date": tx_datetime.normalize(),
            "customer_id": customer.astype("int64"),
            "terminal_id": terminal.astype("int64"),
            "tx_amount": amount,
            "tx_fraud": fraud.astype("int32"),
            "fraud_reported_at": pd.Series(reported).where(fraud),
        }
    ).sort_values("tx_datetime", kind="stable")
    frame["transaction_id"] = np.arange(n, dtype="int64")
    frame["tx_during_weekend"] = (frame["tx_datetime"].dt.weekday >= 5).astype("int32")
    frame["tx_during_night"] = (frame["tx_datetime"].dt.hour <= 6).astype("int32")
    frame = frame.sort_values(["customer_id", "tx_datetime", "transaction_id"], kind="stable")
    for window in (1, 7, 30):
        rolling = frame.groupby("customer_id").rolling(f"{window}D", on="tx_datetime")["tx_amount"]
        frame[f"customer_id_nb_tx_{window}day_window"] = rolling.count().to_numpy().astype("int64")
        frame[f"customer_id_avg_amount_{window}day_window"] = rolling.mean().to_numpy()
        frame[f"customer_id_amount_ratio_{window}day_window"] = (
            frame["tx_amount"] / frame[f"customer_id_avg_amount_{window}day_window"]
        )
    std = rolling.std(ddof=0).to_numpy()  # the 30-day window (last of the loop)
    deviation = frame["tx_amount"].to_numpy() - frame["customer_id_avg_amount_30day_window"].to_numpy()
    frame["customer_id_amount_zscore_30day_window"] = np.divide(deviation, std, out=np.zeros(n), where=std > 0)
    frame["customer_id_max_amount_30day_window"] = rolling.max().to_numpy()
    frame = frame.sort_values("transaction_id").reset_index(drop=True)
    # other frauds of the terminal in (t - 7 days, t] reported by t
    frauds = frame.loc[frame["tx_fraud"] == 1, ["terminal_id", "transaction_id", "tx_datetime", "fraud_reported_at"]]
    pairs = frauds.merge(frame[["terminal_id", "transaction_id", "tx_datetime"]], on="terminal_id", suffixes=("_fraud", ""))
    pairs = pairs[
        (pairs["tx_datetime_fraud"] > pairs["tx_datetime"] - pd.Timedelta(days=7))
        & (pairs["tx_datetime_fraud"] <= pairs["tx_datetime"])
        & (pairs["transaction_id_fraud"] != pairs["transaction_id"])
        & (pairs["fraud_reported_at"] <= pairs["tx_datetime"])
    ]
    frame["terminal_id_reported_frauds_7day_window"] = np.bincount(pairs["transaction_id"], minlength=n).astype("int64")
    # Terminal windows on whole days: transactions of days (d - n - 7, d - 7]; risk = those of
    # them whose fraud was reported before day d, over their count.
    day = (pd.to_datetime(frame["tx_date"]) - pd.Timestamp(start)).dt.days.to_numpy()
    term = frame["terminal_id"].to_numpy()
    counts = np.zeros((terminals, days + 1), dtype="int64")  # [terminal, day], day 0 = before start
    np.add.at(counts, (term, day + 1), 1)
    cum = counts.cumsum(axis=1)
    is_fraud = frame["tx_fraud"].to_numpy() == 1
    report_day = (frame["fraud_reported_at"].dt.floor("D") - pd.Timestamp(start)).dt.days.fillna(-1).to_numpy()
    # known[t, j, d]: frauds at terminal t on day j reported before day d
    known = np.zeros((terminals, days, days + 1), dtype="int64")
    np.add.at(known, (term[is_fraud], day[is_fraud], np.minimum(report_day[is_fraud].astype("int64") + 1, days)), 1)
    known = known.cumsum(axis=2)
    for window in (1, 7, 30):
        hi = np.clip(day - 7, -1, days - 1)
        lo = np.clip(day - 7 - window, -1, days - 1)
        nb = cum[term, hi + 1] - cum[term, lo + 1]
        nf = np.zeros(len(frame), dtype="int64")
        for j in range(window):  # tx days lo+1 .. hi
            tx_day = lo + 1 + j
            ok = tx_day <= hi
            nf[ok] += known[term[ok], tx_day[ok].clip(0), day[ok]] * (tx_day[ok] >= 0)
        frame[f"terminal_id_nb_tx_{window}day_window"] = nb.astype("int64")
        frame[f"terminal_id_risk_{window}day_window"] = np.where(nb > 0, nf / np.maximum(nb, 1), 0.0)
    frame["tx_fraud_scenario"] = frame["tx_fraud"].astype("int32")
    frame["tx_date"] = frame["tx_date"].dt.date
    columns = ["transaction_id", "tx_datetime", "tx_date", "customer_id", "terminal_id", *FEATURES, *EXTRA_FEATURES]
    return frame[[*columns, "tx_fraud", "fraud_reported_at", "tx_fraud_scenario"]]


@pytest.fixture(scope="session")
def feature_frame() -> pd.DataFrame:
    """The default generated feature table (built once per session; do not mutate)."""
    return make_feature_frame()


@pytest.fixture
def warehouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate the dbt profile's DuckDB file, the landing root and the settings file in tmp_path."""
    monkeypatch.setenv("FRAUDOPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("FRAUDOPS_LANDING_ROOT", str(tmp_path / "landing"))
    monkeypatch.setenv("FRAUDOPS_SETTINGS_FILE", str(tmp_path / "no-fraudops.yaml"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.delenv("FRAUDOPS_TARGET", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path


def mlflow_env(tmp_path: Path) -> dict[str, str]:
    """Environment variables pointing settings at tmp_path (dbt project = the repository)."""
    return {
        "FRAUDOPS__DBT__PROJECT_DIR": str(REPO_ROOT),
        "FRAUDOPS__DBT__PROFILES_DIR": str(REPO_ROOT),
        "FRAUDOPS__DBT__TARGET": "local",
        "FRAUDOPS__MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "FRAUDOPS__MLFLOW__ARTIFACT_LOCATION": str(tmp_path / "mlartifacts"),
        "FRAUDOPS__MLFLOW__EXPERIMENT": "fraudops-test",
    }


def settings_for(tmp_path: Path, **overrides: dict) -> Settings:
    """Settings with warehouse, MLflow and dbt paths under ``tmp_path`` (plus ``overrides``),
    without touching the environment (the DuckDB path still comes from FRAUDOPS_DUCKDB_PATH)."""
    sections: dict[str, dict] = {
        "dbt": {"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT), "target": "local"},
        "mlflow": {
            "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "artifact_location": str(tmp_path / "mlartifacts"),
            "experiment": "fraudops-test",
        },
    }
    for section, values in overrides.items():
        sections[section] = {**sections.get(section, {}), **values}
    return load_settings(**sections)


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store, created once (migrations take seconds); copy it
    with :func:`copy_mlflow_db` instead of letting each test create its own."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def copy_mlflow_db(template: Path, tmp_path: Path) -> None:
    """Start ``sqlite:///{tmp_path}/mlflow.db`` from the migrated template."""
    shutil.copyfile(template, tmp_path / "mlflow.db")


@pytest.fixture
def mlflow_settings(
    tmp_path: Path, warehouse_env: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path
) -> Settings:
    """Settings tracking to ``sqlite:///{tmp_path}/mlflow.db``, warehouse in tmp_path; set as
    environment variables too, so the CLI (which loads its own settings) sees the same."""
    copy_mlflow_db(mlflow_db_template, tmp_path)
    for key, value in mlflow_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    return load_settings()


def write_feature_table(settings: Settings, frame: pd.DataFrame, relation: str = FEATURE_TABLE) -> None:
    """Write ``frame`` as the gold feature table of the settings' warehouse."""
    with open_warehouse(settings) as wh:
        wh.write(frame, relation, mode="overwrite")


@pytest.fixture
def feature_table(mlflow_settings: Settings, feature_frame: pd.DataFrame) -> pd.DataFrame:
    """``gold.transaction_features`` in the tmp warehouse, filled with ``feature_frame``."""
    write_feature_table(mlflow_settings, feature_frame)
    return feature_frame


@pytest.fixture
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path with no project settings file or FRAUDOPS__ override leaking in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRAUDOPS_SETTINGS_FILE", raising=False)
    for name in [n for n in os.environ if n.startswith("FRAUDOPS__")]:
        monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    """Headless Chromium (tests/browser.py) for the HTML pages: the report, the model card."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: `make browser` should have installed it")
        pytest.skip("no Chromium here: run `make browser` (apt-get install chromium)")
    with Chromium.launch(tmp_path_factory.mktemp("chromium"), executable) as browser:
        yield browser
