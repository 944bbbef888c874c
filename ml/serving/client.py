"""A client of the scoring server (httpx): what ``ml replay --serve-url`` and the tests use.

:func:`serve_landed_day` is the replay's scoring step through a running server.

:func:`post_in_time_order` sends a day's transactions and fraud reports as a bank's systems
would: by time, a report before a transaction of the same instant (a report counts at
``reported_at <= tx_datetime``), consecutive transactions in requests of ``batch_size`` rows.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.lifecycle.score import ScoreResult
from ml.platform.runtime import Runtime
from ml.serving.contract import REPORT_FIELDS, TRANSACTION_FIELDS


def records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as JSON-ready records (timestamps as ISO 8601 strings)."""
    out = frame.loc[:, list(columns)].copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return out.to_dict(orient="records")


def frame_of(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    """Predictions of a response as a frame (features, if asked for, as columns)."""
    rows = [
        {k: v for k, v in p.items() if k != "features"} | dict(p.get("features", {}))
        for p in predictions
    ]
    return pd.DataFrame(rows)


class ServingClient:
    """``/invocations``, ``/fraud-reports`` and ``/version`` of a server at ``url`` (or of an
    app, through any httpx-compatible ``client`` such as FastAPI's TestClient)."""

    def __init__(self, url: str = "", client: Any = None, timeout: float = 60.0):
        import httpx

        self.http = client if client is not None else httpx.Client(base_url=url, timeout=timeout)

    def score(self, transactions: pd.DataFrame, include_features: bool = False) -> pd.DataFrame:
        response = self.http.post(
            "/invocations",
            params={"include_features": "true"} if include_features else None,
            json={"dataframe_records": records(transactions, TRANSACTION_FIELDS)},
        )
        _raise_for(response)
        return frame_of(response.json()["predictions"])

    def report(self, reports: pd.DataFrame) -> int:
        response = self.http.post(
            "/fraud-reports", json={"dataframe_records": records(reports, REPORT_FIELDS)}
        )
        _raise_for(response)
        return int(response.json()["new"])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until ``/health`` is 200 (the server loads its model and state first)."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the scoring server is not ready after {timeout:g} s")
            time.sleep(0.1)

    def version(self) -> dict[str, Any]:
        response = self.http.get("/version")
        _raise_for(response)
        return response.json()

    def close(self) -> None:
        self.http.close()


def _raise_for(response: Any) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")


def post_in_time_order(
    client: ServingClient,
    transactions: pd.DataFrame,
    reports: pd.DataFrame,
    batch_size: int = 1,
    include_features: bool = False,
) -> pd.DataFrame:
    """Send ``transactions`` and ``reports`` interleaved in time order (a report first at the
    same instant; same-second transactions by id); the predictions in the order served."""
    tx_times = pd.to_datetime(transactions["tx_datetime"]).to_numpy()
    report_times = pd.to_datetime(reports["reported_at"]).to_numpy()
    times = np.concatenate([report_times, tx_times])
    kinds = np.r_[np.zeros(len(reports), int), np.ones(len(transactions), int)]
    ids = np.r_[reports["transaction_id"].to_numpy(), transactions["transaction_id"].to_numpy()]
    rows = np.r_[np.arange(len(reports)), np.arange(len(transactions))]
    order = np.lexsort((ids, kinds, times))
    kinds, rows = kinds[order], rows[order]
    starts = np.flatnonzero(np.r_[True, kinds[1:] != kinds[:-1]])
    ends = np.r_[starts[1:], len(kinds)]
    served: list[pd.DataFrame] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if kinds[start] == 0:
            client.report(reports.iloc[rows[start:end]])
            continue
        for chunk in range(start, end, batch_size):
            part = transactions.iloc[rows[chunk : min(end, chunk + batch_size)]]
            served.append(client.score(part, include_features))
    return pd.concat(served, ignore_index=True) if served else pd.DataFrame()


def serve_landed_day(rt: Runtime, url: str, landing_root: Path, day: dt.date) -> ScoreResult:
    """Send ``day``'s landing files (transactions, fraud reports) through the server at ``url``
    in time order, in requests of 1,000, and write its scores into scoring.predictions (what
    ``ml score`` would write for the day; the monitoring marts read it)."""
    import pyarrow.parquet as pq

    from ml.platform.tables import PREDICTION_COLUMNS, PREDICTION_KEYS, PREDICTIONS
    from ml.world.landing import FRAUD_REPORTS, TRANSACTIONS

    clock = time.perf_counter()

    def landed(dataset) -> pd.DataFrame:
        path = dataset.file_path(landing_root, day)
        return pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame()

    transactions = landed(TRANSACTIONS)
    reports = landed(FRAUD_REPORTS)
    if reports.empty:
        reports = pd.DataFrame({"transaction_id": [], "reported_at": pd.to_datetime([])})
    client = ServingClient(url)
    try:
        client.wait_ready()
        version = str(client.version()["model_version"])
        served = post_in_time_order(client, transactions, reports, batch_size=1_000)
    finally:
        client.close()
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    added = 0
    if len(served):
        version = str(served["model_version"].iloc[-1])
        rows = served.assign(model_name=rt.model_name, scored_at=scored_at)
        rows = rows.astype({"transaction_id": "int64", "score": "float64", "is_alert": "bool"})
        with rt.warehouse() as warehouse:
            added = warehouse.write(
                rows[list(PREDICTION_COLUMNS)],
                PREDICTIONS,
                mode="insert_new",
                keys=list(PREDICTION_KEYS),
            )
    return ScoreResult(
        model_name=rt.model_name,
        model_version=version,
        flavor="ml serve",
        rows_read=len(served),
        rows_added=int(added),
        alerts=int(served["is_alert"].sum()) if len(served) else 0,
        alert_threshold=rt.settings.model.alert_threshold,
        scored_at=scored_at,
        start=day,
        end=day,
        seconds={"total": time.perf_counter() - clock},
    )
