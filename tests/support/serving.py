"""Helpers of the online feature tests (tests/serving): the pandas reference's comparison
(bench/pandas_features.py), a replay of rows through a state. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pandas as pd

from ml.serving.feed import serve_in_time_order
from ml.serving.memory import InMemoryFeatureState
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.state import FeatureState
from ml.serving.windows import FeatureWindows

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_reference() -> ModuleType:
    """Import bench/pandas_features.py (bench/ is a folder of scripts, not a package)."""
    name = "fraudops_bench_pandas_features"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "bench" / "pandas_features.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def replay(
    state: FeatureState, transactions: pd.DataFrame, reports: pd.DataFrame, batch_size: int = 1_000
) -> pd.DataFrame:
    """Serve ``transactions`` and ``reports`` (landing or silver columns) through ``state`` in
    time order; one row of features per transaction."""
    served = serve_in_time_order(
        state,
        TransactionRows.from_frame(transactions),
        ReportRows.from_frame(reports) if len(reports) else ReportRows.from_records([]),
        batch_size=batch_size,
    )
    return served.to_frame()


def fresh_state(windows: FeatureWindows) -> InMemoryFeatureState:
    return InMemoryFeatureState(windows)


# --- the scoring server without MLflow or a warehouse (tests/serving/test_serve_*.py) ---------------
DAY = pd.Timestamp("2018-06-01")


class StubRegistry:
    """The part of an MlflowClient the champion watcher reads: aliases, moved by the test."""

    def __init__(self, aliases: dict[str, str] | None = None):
        self.aliases = dict(aliases or {})
        self.calls = 0

    def get_model_version_by_alias(self, name: str, alias: str):
        from types import SimpleNamespace

        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        self.calls += 1
        if alias not in self.aliases:
            raise MlflowException("no alias", error_code=RESOURCE_DOES_NOT_EXIST)
        version = self.aliases[alias]
        return SimpleNamespace(version=version, run_id=f"run-{version}")


def stub_loader(columns: tuple[str, ...], delay: float = 0.0):
    """A loader of stub model versions: version v scores ``sigmoid(v * amount / 100 - 3)`` on
    the features ``columns`` (``delay`` seconds to load, like a download)."""
    import time

    import numpy as np

    from ml.lifecycle.loaded_model import LoadedModel

    def load(name: str, version: str) -> LoadedModel:
        time.sleep(delay)
        factor = float(version)

        def predict(x: pd.DataFrame) -> np.ndarray:
            z = factor * x["tx_amount"].to_numpy() / 100.0 - 3.0
            return 1.0 / (1.0 + np.exp(-z))

        return LoadedModel(
            name=name,
            version=str(version),
            inputs=dict.fromkeys(columns, "double"),
            flavor="stub",
            _predict=predict,
        )

    return load


def history(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Transactions of the 10 days before ``DAY`` on 20 cards and 10 terminals."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, rows + 1),
            "tx_datetime": DAY
            - pd.Timedelta(days=10)
            + pd.to_timedelta(np.sort(rng.integers(0, 10 * 86_400, rows)), unit="s"),
            "customer_id": rng.integers(0, 20, rows),
            "terminal_id": rng.integers(0, 10, rows),
            "tx_amount": rng.uniform(1, 200, rows).round(2),
        }
    )


def stub_service_builder(settings, windows: FeatureWindows, registry: StubRegistry, delay=0.0):
    """``build()`` of a scoring service on a state holding :func:`history`, models from
    :func:`stub_loader`, the inference log where the settings say."""
    from ml.serving.bootstrap import bootstrap_from_frames
    from ml.serving.champion import ChampionWatcher
    from ml.serving.inference_log import InferenceLog
    from ml.serving.service import ScoringService

    def build() -> ScoringService:
        watcher = ChampionWatcher(
            lambda: registry,
            "fraud_detector",
            windows.columns(),
            settings.serving.poll_seconds,
            loader=stub_loader(windows.columns(), delay),
        )
        watcher.load()
        state = bootstrap_from_frames(
            InMemoryFeatureState(windows),
            history(),
            pd.DataFrame(columns=["transaction_id", "reported_at"]),
        )
        log = InferenceLog(settings.serving.log_dir, settings.serving.flush_seconds)
        log.start()
        watcher.start()
        return ScoringService(state, watcher, log, settings.model.alert_threshold)

    return build


def wait_ready(client, timeout: float = 30.0) -> None:
    """Wait until ``/health`` is 200."""
    import time

    deadline = time.monotonic() + timeout
    while client.get("/health").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(client.get("/health").text)
        time.sleep(0.02)


def transaction(transaction_id: int, seconds: int = 0, **changes) -> dict:
    """One raw transaction of ``DAY`` (landing contract), with ``changes``."""
    row = {
        "transaction_id": transaction_id,
        "tx_datetime": (DAY + pd.Timedelta(seconds=seconds)).isoformat(),
        "customer_id": 3,
        "terminal_id": 4,
        "tx_amount": 42.5,
    }
    row.update(changes)
    return row


# --- a simulated world served end to end (tests/serving/test_serve_end_to_end.py) -------------------
def serving_env(root: Path) -> dict[str, str]:
    """Environment putting the warehouse, landing, MLflow, dbt and the inference log under
    ``root`` (read by the in-process settings and by an ``ml serve`` subprocess alike)."""
    from support.common import mlflow_env

    return {
        **mlflow_env(root),
        "FRAUDOPS_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "FRAUDOPS_LANDING_ROOT": str(root / "landing"),
        "FRAUDOPS_SERVING_LOG_DIR": str(root / "serving"),
        "FRAUDOPS__LANDING__ROOT": str(root / "landing"),
        "FRAUDOPS__SERVING__LOG_DIR": str(root / "serving"),
        "FRAUDOPS_SETTINGS_FILE": str(root / "no-fraudops.yaml"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
        "FRAUDOPS__SERVING__FLUSH_SECONDS": "0.2",
        "FRAUDOPS__SERVING__POLL_SECONDS": "0.5",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def register_champion(rt, gold: pd.DataFrame) -> str:
    """Fit a logistic regression on ``gold``'s model features and register it as the
    champion, as ml train registers a model (what ml train + promote leave behind, minus the
    evaluation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ml.lifecycle.data import feature_matrix
    from ml.lifecycle.model_log import register_fitted
    from ml.lifecycle.registry import CHAMPION

    x = feature_matrix(gold, rt.settings.model.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x, gold["tx_fraud"].to_numpy())
    version = register_fitted(rt, model, x, CHAMPION, run_name="serving-test")
    return str(version.version)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int, cwd: Path, timeout: float = 120.0):
    """``ml serve`` in a subprocess; returns it once ``/health`` is 200."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    ml = Path(sys.executable).with_name("ml")
    process = subprocess.Popen(
        [str(ml), "serve", "--port", str(port)],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ml serve exited {process.returncode}: {process.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError(f"ml serve not ready after {timeout} s")


@contextmanager
def uvicorn_thread(app, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread; yields its URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
