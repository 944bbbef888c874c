"""What a prediction route needs from a server: the ``ScoringService`` protocol, and the online
implementation (online feature state + a registered model version + its reason codes).

The DataRobot-compatible routes (ml/serving/datarobot.py) depend on the protocol only, so they
mount on any server that implements it (``ml serve``'s app, with its hot champion swap and
inference log, or :class:`OnlineScoringService` below, which the tests serve).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ml.lifecycle import data, registry
from ml.lifecycle.explain import Explainer, ExplanationError
from ml.lifecycle.loaded_model import LoadedModel, load_model
from ml.platform.errors import ModelRegistryError
from ml.serving.bootstrap import bootstrap_from_warehouse
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.state import FeatureState
from ml.serving.windows import FeatureWindows

if TYPE_CHECKING:
    from ml.platform.runtime import Runtime

#: Columns of :meth:`ScoringService.score`'s frame, before the reasons.
SCORE_COLUMNS = ("transaction_id", "score", "is_alert", "model_version")
#: Each row's reasons: a list of (feature, value, strength), strongest towards fraud first.
REASONS = "reasons"


@runtime_checkable
class ScoringService(Protocol):
    """Scores raw transactions (the landing contract's columns) as they are authorised."""

    model_name: str
    model_version: str
    threshold: float

    def score(self, transactions: pd.DataFrame, explain: int = 0) -> pd.DataFrame:
        """One row per transaction, in input order: ``transaction_id, score, is_alert,
        model_version`` and ``reasons``: up to ``explain`` (feature, value, strength) tuples
        (empty lists when ``explain`` is 0). The transactions are recorded in the online state."""
        ...

    def add_fraud_reports(self, reports: pd.DataFrame) -> int:
        """Record fraud reports (``transaction_id, reported_at``); returns how many were new."""
        ...


class OnlineScoringService:
    """:class:`ScoringService` over an online feature state and one loaded model version.

    One lock serialises the state's updates (the embedded state is not thread-safe; FastAPI runs
    sync routes in a thread pool)."""

    def __init__(self, state: FeatureState, model: LoadedModel, threshold: float) -> None:
        self.state = state
        self.model = model
        self.model_name = model.name
        self.model_version = model.version
        self.threshold = float(threshold)
        self._explainer: Explainer | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_runtime(
        cls,
        rt: Runtime,
        *,
        model: str | None = None,
        alias: str = "champion",
        state: FeatureState | None = None,
    ) -> OnlineScoringService:
        """The version of ``model`` (default: the settings' model) at ``alias``, over ``state``
        (default: bootstrapped from the warehouse's silver tables)."""
        name = model or rt.settings.model.name
        version = registry.version_by_alias(rt.registry(), name, alias)
        if version is None:
            raise ModelRegistryError(
                f"{name} has no @{alias} version; train, validate and promote one first"
            )
        if state is None:
            with rt.warehouse(read_only=True) as wh:
                state = bootstrap_from_warehouse(wh, FeatureWindows.from_settings(rt.settings))
        loaded = load_model(name, str(version.version))
        return cls(state, loaded, rt.settings.model.alert_threshold)

    def explainer(self) -> Explainer:
        if self._explainer is None:
            self._explainer = Explainer.for_model(self.model)
        return self._explainer

    def score(self, transactions: pd.DataFrame, explain: int = 0) -> pd.DataFrame:
        rows = TransactionRows.from_frame(transactions)
        with self._lock:
            features = self.state.features(rows).to_frame()
        x = data.feature_matrix(features, self.model.columns)
        scores = self.model.predict_matrix(x)
        frame = pd.DataFrame(
            {
                "transaction_id": rows.transaction_id,
                "score": scores,
                "is_alert": scores >= self.threshold,
                "model_version": self.model.version,
            },
            columns=list(SCORE_COLUMNS),
        )
        frame[REASONS] = self._reasons(x, explain)
        return frame

    def _reasons(self, x: pd.DataFrame, k: int) -> list[list[tuple[str, float, float]]]:
        reasons: list[list[tuple[str, float, float]]] = [[] for _ in range(len(x))]
        if k <= 0 or not len(x):
            return reasons
        try:
            top = self.explainer().top_reasons(x, k)
        except ExplanationError:
            return reasons
        for row, feature, value, strength in zip(
            top["row"].to_numpy(),
            top["feature"].to_numpy(),
            top["feature_value"].to_numpy(np.float64),
            top["strength"].to_numpy(np.float64),
            strict=True,
        ):
            reasons[int(row)].append((str(feature), float(value), float(strength)))
        return reasons

    def add_fraud_reports(self, reports: pd.DataFrame) -> int:
        with self._lock:
            return self.state.add_fraud_reports(ReportRows.from_frame(reports))
