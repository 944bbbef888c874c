"""Reason codes: exact per-row feature contributions of every candidate model (ml/models.py).

What DataRobot calls *prediction explanations*. For one row, the contributions ``phi_j`` of the
features plus a base value add up exactly to the model's raw output:

===========================  =====================================  ============  ==============
model (last pipeline step)   method                                 space         raw output
===========================  =====================================  ============  ==============
LogisticRegression           coefficient x standardised value       log-odds      decision_function
HistGradientBoosting         TreeSHAP (path-dependent, exact)       log-odds      decision_function
RandomForest                 TreeSHAP (path-dependent, exact)       probability   predict_proba[:, 1]
===========================  =====================================  ============  ==============

* Logistic regression: the pipeline's ``StandardScaler`` makes every feature's training mean 0,
  so ``phi_j = coef_j * z_j`` is the exact (interventional, independent-features) Shapley value
  against the training mean and the base value is the intercept.
* Gradient boosting: the trees add up in log-odds, so TreeSHAP (``shap.TreeExplainer``, which
  supports scikit-learn's HistGradientBoosting natively; path-dependent) is exact there. shap is
  imported when the first tree model is explained (its import, numba included, takes ~1 s):
  ``ml score`` starts it in the background while it predicts.
* Random forest: the forest *averages probabilities* of its trees; the log of the odds of an
  average is not a sum over trees, so no exact additive log-odds attribution exists. Its
  contributions are in probability space (they add up to ``predict_proba[:, 1]``); ``space``
  says which, and strengths of two model families are not comparable.

Preprocessing: the pipeline steps before the estimator must map each feature to itself (the
scalers, ``passthrough``); the rows are transformed by them, explained, and reported with the
*original* feature values. Anything else raises :class:`ExplanationError`.

One :class:`Explainer` per model version serves both paths: online (``explain`` of a few rows,
milliseconds a row, bench/bench_explain.py) and batch (``top_reasons`` of a day's alerts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml.platform.errors import FraudopsError

if TYPE_CHECKING:
    from ml.lifecycle.loaded_model import LoadedModel

Space = Literal["log_odds", "probability"]
TOP_REASONS = 3
#: Columns of the reason rows (``top_reasons``), before the scoring run adds its ids.
REASON_COLUMNS = ("row", "reason_rank", "feature", "feature_value", "strength")
_COLUMNWISE = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")


class ExplanationError(FraudopsError):
    """A model this module cannot explain exactly."""


@dataclass(frozen=True)
class Explanation:
    """Contributions of ``features`` for each row: ``contributions.sum(1) + base_value == raw``."""

    features: list[str]
    contributions: np.ndarray  # (rows, features), float64
    base_value: float
    space: Space

    @property
    def raw(self) -> np.ndarray:
        """The model's raw output of each row (decision_function, or probability for a forest):
        exact by construction, so it is not predicted again."""
        return self.contributions.sum(axis=1) + self.base_value

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.contributions, columns=self.features)


def _split(estimator: Any) -> tuple[list[Any], Any]:
    """The preprocessing steps (checked column-wise) and the final estimator of a model."""
    steps = [step for _, step in getattr(estimator, "steps", [("model", estimator)])]
    head, last = steps[:-1], steps[-1]
    for step in head:
        if step in (None, "passthrough"):
            continue
        if type(step).__name__ not in _COLUMNWISE:
            raise ExplanationError(
                f"cannot explain a pipeline with a {type(step).__name__} step: reason codes map each "
                f"input feature to itself, which only {', '.join(_COLUMNWISE)} and passthrough keep"
            )
    return [s for s in head if s not in (None, "passthrough")], last


class Explainer:
    """Exact reason codes of one fitted model (a candidate Pipeline or its final estimator).

    ``features`` are the model's input columns, in order (the signature of the version).
    Build it once per model version (the SHAP tree structures are extracted then), then call
    :meth:`explain` or :meth:`top_reasons` for any number of rows.
    """

    def __init__(self, estimator: Any, features: Sequence[str]):
        self.features = list(features)
        self._head, self._model = _split(estimator)
        kind = type(self._model).__name__
        if kind == "LogisticRegression":
            coef = np.asarray(self._model.coef_, dtype="float64")
            if coef.shape[0] != 1:
                raise ExplanationError("cannot explain a multi-class logistic regression")
            self._coef = coef[0]
            self._intercept = float(np.ravel(self._model.intercept_)[0])
            self.method, self.space = "linear", "log_odds"
        elif kind in TREE_MODELS:
            import shap

            try:
                self._tree = shap.TreeExplainer(self._model)
            except Exception as exc:
                raise ExplanationError(f"cannot explain this {kind}: {exc}") from None
            # the positive class: a forest explains both classes' probabilities
            self._positive = 1 if kind == "RandomForestClassifier" else None
            base = np.ravel(np.asarray(self._tree.expected_value, dtype="float64"))
            self._base = float(base[-1])
            self.space = "log_odds" if kind == "HistGradientBoostingClassifier" else "probability"
            self.method = "tree_shap"
        else:
            raise ExplanationError(
                f"no exact explanation for {kind}; reason codes cover LogisticRegression, "
                "HistGradientBoostingClassifier and RandomForestClassifier"
            )
        if len(self.features) != int(getattr(self._model, "n_features_in_", len(self.features))):
            raise ExplanationError(
                f"the model has {self._model.n_features_in_} inputs, not the {len(self.features)} features given"
            )
        self.kind = kind

    @classmethod
    def for_model(cls, model: LoadedModel) -> Explainer:
        """The explainer of a loaded registry version (sklearn flavor only)."""
        estimator = getattr(model, "estimator", None)
        if estimator is None:
            raise ExplanationError(
                f"{model.name} v{model.version} is a {model.flavor} model without its scikit-learn "
                "estimator; reason codes need a model logged by ml train"
            )
        return cls(estimator, model.columns)

    def _named(self, values: np.ndarray, step: Any) -> pd.DataFrame | np.ndarray:
        """``values`` as ``step`` was fitted: a named frame if it saw feature names (no warning)."""
        names = getattr(step, "feature_names_in_", None)
        return (
            pd.DataFrame(values, columns=list(names), copy=False) if names is not None else values
        )

    def _matrix(self, x: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(original values, values as the estimator sees them), float64."""
        if isinstance(x, pd.DataFrame):
            x = x[self.features].to_numpy(dtype="float64")
        original = np.ascontiguousarray(x, dtype="float64").reshape(-1, len(self.features))
        seen = original
        if len(original):
            for step in self._head:
                if (
                    type(step).__name__ == "StandardScaler"
                ):  # its transform, without sklearn's checks
                    mean = step.mean_ if step.with_mean else 0.0
                    scale = step.scale_ if step.with_std else 1.0
                    seen = (seen - mean) / scale
                else:
                    seen = np.asarray(step.transform(self._named(seen, step)), dtype="float64")
        return original, seen

    def explain(self, x: pd.DataFrame | np.ndarray) -> Explanation:
        """Contributions of every feature for every row of ``x`` (columns = ``features``)."""
        _, seen = self._matrix(x)
        if self.method == "linear":
            phi, base = seen * self._coef, self._intercept
        elif not len(seen):
            phi, base = np.empty((0, len(self.features))), self._base
        else:
            values = np.asarray(
                self._tree.shap_values(seen, check_additivity=False), dtype="float64"
            )
            phi = values[..., self._positive] if self._positive is not None else values
            base = self._base
        return Explanation(self.features, np.ascontiguousarray(phi), float(base), self.space)

    def top_reasons(self, x: pd.DataFrame | np.ndarray, k: int = TOP_REASONS) -> pd.DataFrame:
        """The ``k`` features pushing each row most towards fraud (largest signed contribution
        first; a row with fewer than ``k`` positive ones shows the least negative next). One row
        per (input row, rank): ``row`` (position in ``x``), ``reason_rank`` 1..k, ``feature``,
        ``feature_value`` (the original, unscaled value) and ``strength`` (the contribution)."""
        original, _ = self._matrix(x)
        n = len(original)
        k = min(k, len(self.features))
        if n == 0:
            return pd.DataFrame(
                {
                    "row": np.empty(0, "int64"),
                    "reason_rank": np.empty(0, "int32"),
                    "feature": np.empty(0, object),
                    "feature_value": np.empty(0, "float64"),
                    "strength": np.empty(0, "float64"),
                }
            )
        phi = self.explain(original).contributions
        # top k by strength, descending; ties by feature order (stable)
        order = np.argsort(-phi, axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(n), k)
        columns = order.ravel()
        return pd.DataFrame(
            {
                "row": rows.astype("int64"),
                "reason_rank": np.tile(np.arange(1, k + 1), n).astype("int32"),
                "feature": np.asarray(self.features, dtype=object)[columns],
                "feature_value": original[rows, columns],
                "strength": phi[rows, columns],
            },
            columns=list(REASON_COLUMNS),
        )


# --- the scoring.prediction_explanations rows of a scoring run ----------------------------------

#: One row per (alerted transaction, model version, reason rank) - docs/architecture.md.
EXPLANATION_KEYS = ("transaction_id", "model_version", "reason_rank")
EXPLANATION_COLUMNS = (
    "transaction_id",
    "model_name",
    "model_version",
    "reason_rank",
    "feature",
    "feature_value",
    "strength",
    "strength_space",
    "scored_at",
)


def explanations_frame(
    explainer: Explainer | None,
    transaction_ids: np.ndarray,
    x: pd.DataFrame | np.ndarray,
    alerted: np.ndarray,
    model_name: str,
    model_version: str,
    scored_at: Any,
    k: int = TOP_REASONS,
) -> pd.DataFrame:
    """The top ``k`` reasons of every alerted row of ``x`` (``alerted`` a boolean mask), as
    ``scoring.prediction_explanations`` rows; typed and empty without alerts or explainer."""
    alerted = np.asarray(alerted, dtype=bool)
    if explainer is None or not alerted.any():
        frame = pd.DataFrame({c: [] for c in REASON_COLUMNS}).astype(
            {
                "row": "int64",
                "reason_rank": "int32",
                "feature": object,
                "feature_value": "float64",
                "strength": "float64",
            }
        )
        space = explainer.space if explainer is not None else "log_odds"
    else:
        rows = x[alerted] if isinstance(x, np.ndarray) else x.loc[alerted]
        frame = explainer.top_reasons(rows, k)
        space = explainer.space
    ids = np.asarray(transaction_ids, dtype="int64")[alerted][frame["row"].to_numpy()]
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "model_name": pd.Series([model_name] * len(frame), dtype=object),
            "model_version": pd.Series([str(model_version)] * len(frame), dtype=object),
            "reason_rank": frame["reason_rank"].to_numpy(dtype="int32"),
            "feature": frame["feature"].to_numpy(dtype=object),
            "feature_value": frame["feature_value"].to_numpy(dtype="float64"),
            "strength": frame["strength"].to_numpy(dtype="float64"),
            "strength_space": pd.Series([space] * len(frame), dtype=object),
            "scored_at": np.full(len(frame), np.datetime64(scored_at, "us")),
        },
        columns=list(EXPLANATION_COLUMNS),
    )


__all__ = [
    "EXPLANATION_COLUMNS",
    "EXPLANATION_KEYS",
    "REASON_COLUMNS",
    "TOP_REASONS",
    "Explainer",
    "Explanation",
    "ExplanationError",
    "explainer_or_none",
    "explanations_frame",
]


TREE_MODELS = ("HistGradientBoostingClassifier", "RandomForestClassifier")


def warm_up(model: LoadedModel) -> None:
    """Import what explaining ``model`` needs (shap for a tree model) ahead of the first call:
    ``ml score`` runs it in a background thread while it predicts."""
    estimator = getattr(model, "estimator", None)
    if estimator is not None and type(_split(estimator)[1]).__name__ in TREE_MODELS:
        import shap  # noqa: F401 - imported for its side effect: later imports are free


def explainer_or_none(model: LoadedModel) -> Explainer | None:
    """:meth:`Explainer.for_model`, or ``None`` (with a warning logged) for a model that cannot be
    explained exactly: its alerts are then written without reasons."""
    import logging

    try:
        return Explainer.for_model(model)
    except ExplanationError as exc:
        logging.getLogger(__name__).warning(
            "no reason codes for %s v%s: %s", model.name, model.version, exc
        )
        return None
