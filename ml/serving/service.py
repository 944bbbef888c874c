"""What the scoring server does, without HTTP: score checked transactions with the champion on
the online state, record fraud reports, log both.

One request = one :meth:`ScoringService.score`: the state computes the batch's features in time
order (each row sees the earlier ones, ml/serving/memory.py), the model read once from the
:class:`~ml.serving.champion.ChampionWatcher` scores every row, the rows go to the inference
log. Rows come back in the request's order.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.serving.champion import ChampionWatcher
from ml.serving.inference_log import InferenceLog, utc_now
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.state import FeatureState


@dataclass
class ScoringService:
    """The online state, the champion and the inference log of one server process."""

    state: FeatureState
    champion: ChampionWatcher
    log: InferenceLog
    alert_threshold: float

    def score(
        self,
        rows: TransactionRows,
        request_id: str,
        received: float,
        include_features: bool = False,
    ) -> list[dict[str, Any]]:
        """Predictions of checked transactions (``received``: ``time.perf_counter()`` when the
        request arrived, for the logged latency)."""
        received_at = utc_now() - _since(received)
        served = self.champion.current
        batch = self.state.features(rows)
        scores = served.scores(batch.values)
        alerts = scores >= self.alert_threshold
        latency_ms = (time.perf_counter() - received) * 1000.0
        version = served.version
        self.log.append_predictions(
            {
                "request_id": request_id,
                "transaction_id": rows.transaction_id,
                "tx_datetime": rows.tx_us.astype("datetime64[us]"),
                "customer_id": rows.customer_id,
                "terminal_id": rows.terminal_id,
                "tx_amount": rows.tx_amount,
                "received_at": np.datetime64(received_at, "us"),
                "served_at": np.datetime64(utc_now(), "us"),
                "latency_ms": latency_ms,
                "model_name": served.model.name,
                "model_version": version,
                "score": scores,
                "is_alert": alerts,
                "status": 200,
                "error_code": None,
            }
        )
        ids = rows.transaction_id.tolist()
        predictions = [
            {"transaction_id": i, "score": s, "is_alert": a, "model_version": version}
            for i, s, a in zip(ids, scores.tolist(), alerts.tolist(), strict=True)
        ]
        if include_features:
            for prediction, k in zip(predictions, range(len(batch)), strict=True):
                prediction["features"] = batch.row(k)
        return predictions

    def record_reports(self, reports: ReportRows, request_id: str) -> int:
        """Record checked fraud reports in the state and the log; how many were new."""
        new = self.state.add_fraud_reports(reports)
        self.log.append_reports(
            {
                "request_id": request_id,
                "transaction_id": reports.transaction_id,
                "reported_at": reports.reported_us.astype("datetime64[us]"),
                "received_at": np.datetime64(utc_now(), "us"),
            }
        )
        return new

    def log_rejected(self, request_id: str, status: int, error_code: str, received: float) -> None:
        """One log row for a rejected request (no transaction: nothing of it was read)."""
        self.log.append_predictions(
            {
                "request_id": [request_id],
                "received_at": np.datetime64(utc_now() - _since(received), "us"),
                "served_at": np.datetime64(utc_now(), "us"),
                "latency_ms": (time.perf_counter() - received) * 1000.0,
                "model_name": self.champion.name,
                "model_version": self.champion.current.version if self.champion.ready else None,
                "status": status,
                "error_code": error_code,
            }
        )

    def version(self) -> dict[str, Any]:
        served = self.champion.current
        size = self.state.size()
        as_of = self.state.as_of
        return {
            "model_name": served.model.name,
            "model_version": served.version,
            "alias": served.alias,
            "run_id": served.run_id,
            "flavor": served.model.flavor,
            "state": {
                "cards": size.cards,
                "terminals": size.terminals,
                "transactions": size.transactions,
                "frauds": size.frauds,
                "reports": size.reports,
                "as_of": as_of.isoformat() if as_of else None,
            },
            "swaps": self.champion.swaps,
            "last_poll_error": self.champion.last_error,
        }

    def close(self) -> None:
        self.champion.stop()
        self.log.close()


def _since(clock: float) -> dt.timedelta:
    return dt.timedelta(seconds=max(0.0, time.perf_counter() - clock))
