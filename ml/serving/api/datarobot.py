"""The DataRobot-compatible routes (ml/serving/datarobot.py) on ``ml serve``'s app.

Each deployment id of ``settings.datarobot.deployments`` whose model is the served one, at alias
``champion``, is answered by the server's own service: the same online state, champion (hot
swapped), request checks and inference log as ``/invocations``, so an existing DataRobot client
changes only its base URL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping

import pandas as pd
from fastapi import APIRouter

from ml.lifecycle import data
from ml.lifecycle.explain import Explainer, ExplanationError
from ml.platform.settings import Settings
from ml.serving.api.common import ServingState
from ml.serving.datarobot import datarobot_router
from ml.serving.datarobot_format import RequestError
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.service import ScoringService


class ServedDeployment:
    """The :class:`ml.serving.scoring.ScoringService` protocol over the server's service."""

    def __init__(self, state: ServingState):
        self._state = state
        self._explainers: dict[str, Explainer] = {}

    @property
    def _service(self) -> ScoringService:
        if self._state.service is None:
            raise RequestError(503, "the model and the online state are still loading; retry")
        return self._state.service

    @property
    def model_name(self) -> str:
        return self._service.champion.current.model.name

    @property
    def model_version(self) -> str:
        return self._service.champion.current.version

    @property
    def threshold(self) -> float:
        return self._service.alert_threshold

    def score(self, transactions: pd.DataFrame, explain: int = 0) -> pd.DataFrame:
        service = self._service
        served = service.champion.current  # the version that scores this request
        predictions = service.score(
            TransactionRows.from_frame(transactions),
            request_id=f"datarobot-{uuid.uuid4().hex[:12]}",
            received=time.perf_counter(),
            include_features=explain > 0,
        )
        frame = pd.DataFrame(
            [
                {k: p[k] for k in ("transaction_id", "score", "is_alert", "model_version")}
                for p in predictions
            ]
        )
        frame["reasons"] = self._reasons(served.model, predictions, explain)
        return frame

    def _reasons(
        self, model, predictions: list[dict], k: int
    ) -> list[list[tuple[str, float, float]]]:
        reasons: list[list[tuple[str, float, float]]] = [[] for _ in predictions]
        if k <= 0 or not predictions:
            return reasons
        try:
            explainer = self._explainers.get(model.version) or Explainer.for_model(model)
        except ExplanationError:
            return reasons
        self._explainers[model.version] = explainer
        x = data.feature_matrix(pd.DataFrame([p["features"] for p in predictions]), model.columns)
        top = explainer.top_reasons(x, k)
        for row, feature, value, strength in top[
            ["row", "feature", "feature_value", "strength"]
        ].itertuples(index=False):
            reasons[int(row)].append((str(feature), float(value), float(strength)))
        return reasons

    def add_fraud_reports(self, reports: pd.DataFrame) -> int:
        return self._service.record_reports(
            ReportRows.from_frame(reports), request_id=f"datarobot-{uuid.uuid4().hex[:12]}"
        )


class _Deployments(Mapping[str, ServedDeployment]):
    """The configured deployment ids the server answers (its model, alias champion)."""

    def __init__(self, state: ServingState, settings: Settings):
        self._served = ServedDeployment(state)
        self._ids = [
            deployment_id
            for deployment_id, deployment in settings.datarobot.deployments.items()
            if deployment.model == settings.model.name and deployment.alias == "champion"
        ]

    def __getitem__(self, deployment_id: str) -> ServedDeployment:
        if deployment_id not in self._ids:
            raise KeyError(deployment_id)
        return self._served

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def router(state: ServingState, settings: Settings) -> APIRouter:
    """The DataRobot routes over the server's state (deployment ids from the settings)."""
    return datarobot_router(_Deployments(state, settings), settings)
