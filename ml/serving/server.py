"""``ml serve``: check, build and run the scoring server (uvicorn).

* :func:`preflight` — refuses at once, with one line, when the registry has no champion or the
  warehouse no silver tables (before the port opens);
* :func:`build_service` — loads ``models:/<name>@champion``, bootstraps the online state from
  silver, then restores what the inference log holds beyond it (transactions served and reports
  received since the warehouse was built: a restart after a crash sees them again, up to the
  last flush), and starts the champion poll and the log flush threads;
* :func:`serve` — runs the app until stopped (SIGINT/SIGTERM: the log is flushed on the way out).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ml.lifecycle.registry import CHAMPION, NEEDS_CHAMPION, version_by_alias
from ml.platform.errors import ModelRegistryError
from ml.platform.runtime import Runtime
from ml.platform.tables import TRANSACTIONS
from ml.platform.warehouse import Warehouse
from ml.serving.bootstrap import bootstrap_from_warehouse
from ml.serving.champion import ChampionWatcher
from ml.serving.inference_log import (
    PREDICTIONS_FOLDER,
    REPORTS_FOLDER,
    InferenceLog,
    read_log,
)
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.service import ScoringService
from ml.serving.state import FeatureState
from ml.serving.windows import FeatureWindows

log = logging.getLogger("ml.serving")


@dataclass(frozen=True)
class Restored:
    """What a start-up read back from the inference log."""

    transactions: int
    reports: int


@contextmanager
def serving_warehouse(rt: Runtime) -> Iterator[Warehouse]:
    """The warehouse the state bootstraps from (settings serving.bootstrap), read-only."""
    if rt.settings.serving.bootstrap == "databricks_sql":
        from ml.platform.warehouse.databricks_sql import DatabricksSqlWarehouse

        warehouse = DatabricksSqlWarehouse(rt.target)
        try:
            yield warehouse
        finally:
            warehouse.close()
        return
    with rt.warehouse(read_only=True) as warehouse:
        yield warehouse


def preflight(rt: Runtime) -> str:
    """The champion's version; one-line errors when there is no champion or no warehouse."""
    name = rt.model_name
    champion = version_by_alias(rt.registry(), name, CHAMPION)
    if champion is None:
        raise ModelRegistryError(f"no {name}@{CHAMPION} in the registry; {NEEDS_CHAMPION}")
    with serving_warehouse(rt) as warehouse:
        warehouse.require(TRANSACTIONS, "run dbt build (make run) before ml serve")
    return str(champion.version)


def restore_from_log(state: FeatureState, folder: Path | str) -> Restored:
    """Record the served transactions and received reports of the inference log in ``state``
    (ids it holds are skipped), then evict what no later transaction reads."""
    served = read_log(folder, PREDICTIONS_FOLDER)
    served = served.loc[(served["status"] == 200) & served["transaction_id"].notna()]
    served = served.drop_duplicates("transaction_id")
    transactions = state.add_transactions(
        TransactionRows.from_frame(served.astype({"transaction_id": "int64"}))
    )
    reports_frame = read_log(folder, REPORTS_FOLDER).drop_duplicates("transaction_id")
    reports = state.add_fraud_reports(ReportRows.from_frame(reports_frame))
    state.evict()
    return Restored(transactions, reports)


def build_service(rt: Runtime, windows: FeatureWindows | None = None) -> ScoringService:
    """The champion loaded, the state bootstrapped and restored, the threads started."""
    settings = rt.settings
    windows = windows or FeatureWindows.from_settings(settings)
    watcher = ChampionWatcher(
        rt.registry, rt.model_name, windows.columns(), settings.serving.poll_seconds
    )
    served = watcher.load()
    with serving_warehouse(rt) as warehouse:
        state = bootstrap_from_warehouse(warehouse, windows)
    restored = restore_from_log(state, settings.serving.log_dir)
    log.info(
        "serving %s v%s; state %s (+%d transactions, +%d reports from the inference log)",
        rt.model_name,
        served.version,
        state.size(),
        restored.transactions,
        restored.reports,
    )
    inference_log = InferenceLog(settings.serving.log_dir, settings.serving.flush_seconds)
    inference_log.start()
    watcher.start()
    return ScoringService(state, watcher, inference_log, settings.model.alert_threshold)


def serve(rt: Runtime, host: str, port: int) -> None:
    """Run the server until stopped (after :func:`preflight`)."""
    import uvicorn

    from ml.serving.api.app import create_app

    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        if server is not None:
            server.should_exit = True

    def build() -> ScoringService:
        service = build_service(rt)
        # What start-up left (MLflow, scikit-learn, pandas, the state: ~10^6 objects) out of
        # the cyclic collector's full passes, which would pause requests for tens of ms.
        gc.collect()
        gc.freeze()
        return service

    app = create_app(rt.settings, build, on_failure=stop)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.run()
    state = app.state.serving
    if state.error:
        raise ModelRegistryError(f"the scoring server failed to start: {state.error}")
