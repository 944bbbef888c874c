"""Candidate models: scikit-learn Pipelines over the 15 handbook features.

Each candidate is a :class:`~sklearn.pipeline.Pipeline` whose input is the float64 feature
frame of :func:`ml.lifecycle.data.feature_matrix` and whose ``predict_proba(X)[:, 1]`` is the fraud score.

Class imbalance (about 1 fraud in 100-150 transactions) is handled per family, deliberately:

* ``logistic_regression`` — ``StandardScaler`` + ``LogisticRegression(class_weight="balanced")``.
  Without re-weighting, the loss is dominated by genuine transactions and the decision function
  is squeezed towards 0; balanced weights give frauds as much total weight as genuine rows.
  Scores are then *not* calibrated probabilities (they are inflated), which matters only for the
  alert threshold, not for AUC / AP / Card Precision@k.
* ``hist_gradient_boosting`` — ``HistGradientBoostingClassifier`` (trees need no scaling) with
  fraud rows weighted **x10** (``class_weight={0: 1, 1: 10}``), shallow regularised trees
  (15 leaves, >= 100 rows per leaf) and 35 iterations at learning rate 0.15. Chosen by
  measurement with the prequential protocol on the default simulation (bench/bench_model.py,
  4 folds, mean AP / CP@100):

  ====================================================  =============  =============
  configuration                                         AP             CP@100
  ====================================================  =============  =============
  no weights, lr 0.1, 200 iter, 31 leaves (sklearn)     0.565 ± 0.026  0.237 ± 0.014
  "balanced" weights, same trees                        0.634 ± 0.027  0.248 ± 0.009
  no weights, lr 0.05, 15 leaves, min leaf 100          0.602 ± 0.031  0.258 ± 0.009
  x5 / x10 / x20 / "balanced" (~x110), same             0.628 / 0.640 / 0.643 / 0.634
  **x10, lr 0.05, 100 iter, 15 leaves, min leaf 100**   0.643 ± 0.027  0.261 ± 0.007
  ====================================================  =============  =============

  (Test sets with the default point-in-time rule ``training.known_compromised: reported``. With
  the handbook's own rule, ``delay``, the chosen configuration scores AP 0.679 ± 0.016 and
  CP@100 0.302 ± 0.011 — the handbook's best published prequential result is XGBoost with
  AP 0.687 and CP@100 0.303.)

  The number of trees sets the cost of scoring (``ml score`` predicts 1.78M rows; sklearn's tree
  predictor costs ~57 ns per row and tree on one core here). With the 21 features of today's
  gold table, the same protocol (``bench/bench_model.py --candidate hist_gradient_boosting
  --hyperparameters ...``, 2026-12-01, quiet 2-core VM) gives:

  ===============================  =============  =============  =============
  lr x iterations                  ROC AUC        AP             CP@100
  ===============================  =============  =============  =============
  0.05 x 100 (previous default)    0.939 ± 0.016  0.792 ± 0.018  0.316 ± 0.012
  0.1 x 50                         0.937 ± 0.013  0.792 ± 0.019  0.316 ± 0.012
  **0.15 x 35 (default)**          0.938 ± 0.013  0.792 ± 0.019  0.316 ± 0.012
  0.2 x 25                         0.933 ± 0.019  0.786 ± 0.020  0.314 ± 0.010
  ===============================  =============  =============  =============

  so the default keeps the quality at 35 % of the previous prediction cost.

  Up-weighting frauds helps because boosting with the log loss otherwise spends its splits on
  the 99 % genuine rows; beyond x10 the gain is within the fold spread, and a moderate weight
  keeps scores closer to probabilities (fewer alerts at the 0.5 threshold than "balanced").
  Early stopping is off (it would draw a random validation split across time); the number of
  iterations is fixed instead (lr 0.025 x 400 iterations or L2 = 10 changed nothing).
* ``random_forest`` — optional third family, ``class_weight="balanced_subsample"`` (measured:
  AP 0.607, CP@100 0.256, 9x slower than boosting; not a default candidate).

Hyperparameters can be overridden per candidate with ``training.hyperparameters``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.platform.errors import ConfigError

#: Default estimator parameters per candidate (chosen with bench/bench_model.py).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "class_weight": "balanced", "max_iter": 1000},
    "hist_gradient_boosting": {
        "learning_rate": 0.15,
        "max_iter": 35,
        "max_depth": None,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 100,
        "l2_regularization": 0.0,
        "class_weight": {0: 1.0, 1: 10.0},
        "early_stopping": False,
    },
    "random_forest": {
        "n_estimators": 200,
        "max_depth": 12,
        "min_samples_leaf": 5,
        "class_weight": "balanced_subsample",
        "n_jobs": -1,
    },
}


def _logistic_regression(params: dict[str, Any], random_state: int) -> Pipeline:
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            ("model", LogisticRegression(random_state=random_state, **params)),
        ]
    )


def _hist_gradient_boosting(params: dict[str, Any], random_state: int) -> Pipeline:
    return Pipeline(
        [("model", HistGradientBoostingClassifier(random_state=random_state, **params))]
    )


def _random_forest(params: dict[str, Any], random_state: int) -> Pipeline:
    return Pipeline([("model", RandomForestClassifier(random_state=random_state, **params))])


_BUILDERS: dict[str, Callable[[dict[str, Any], int], Pipeline]] = {
    "logistic_regression": _logistic_regression,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "random_forest": _random_forest,
}

CANDIDATES: tuple[str, ...] = tuple(_BUILDERS)


def candidate_params(
    name: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The estimator parameters of candidate ``name``: defaults updated with ``overrides[name]``."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")
    params = {**DEFAULT_PARAMS[name], **dict((overrides or {}).get(name, {}))}
    weights = params.get("class_weight")
    if isinstance(weights, Mapping):  # {"0": 1, "1": 10} from JSON/env -> {0: 1, 1: 10}
        params["class_weight"] = {int(k): float(v) for k, v in weights.items()}
    return params


def build_candidate(
    name: str,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    random_state: int = 0,
) -> Pipeline:
    """A fresh, unfitted Pipeline for candidate ``name``."""
    params = candidate_params(name, overrides)
    try:
        return _BUILDERS[name](params, random_state)
    except TypeError as exc:
        raise ConfigError(f"invalid hyperparameters for {name}: {exc}") from None


@contextlib.contextmanager
def thread_limit(n_threads: int | None) -> Iterator[None]:
    """Limit the OpenMP/BLAS threads of fit/predict to ``n_threads`` (``None``: library default).

    HistGradientBoosting uses OpenMP; on a busy machine (CI, several jobs per core) its threads
    spin-wait on each other and a 1-second fit can take 15 seconds. One thread is predictable.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads):
        yield


def check_candidates(names: list[str]) -> list[str]:
    """Validate candidate names (one-line ConfigError) and return them without duplicates."""
    if not names:
        raise ConfigError("no candidates to train; set training.candidates or pass --candidate")
    for name in names:
        candidate_params(name)
    return list(dict.fromkeys(names))
