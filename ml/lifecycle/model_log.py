"""Logging a fitted classifier to MLflow and registering it, the one way ``ml train`` does it
(:func:`log_model`, :func:`register_version`), also for a model fitted elsewhere (benchmarks,
tests: :func:`register_fitted`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml.platform.errors import TrackingError, first_line
from ml.platform.runtime import Runtime

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo

MODEL_ARTIFACT = "model"
#: The logged model's outputs (pyfunc: predict_proba), in class order: the last is the fraud score.
OUTPUT_COLUMNS = ("genuine_probability", "fraud_probability")


def log_model(model: Any, signature_x: pd.DataFrame, example_x: pd.DataFrame) -> ModelInfo:
    """Log a fitted classifier in the active run as artifact ``model``, as ``ml train`` logs
    each candidate: sklearn flavor whose pyfunc predicts ``predict_proba``, cloudpickled, with a
    signature whose inputs are ``signature_x``'s columns and types and whose outputs are named
    :data:`OUTPUT_COLUMNS`, and ``example_x`` as the input example."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    # outputs named: predict_proba's columns, in class order (tx_fraud 0, 1)
    signature = ModelSignature(
        inputs=infer_signature(signature_x).inputs,
        outputs=Schema([ColSpec("double", column) for column in OUTPUT_COLUMNS]),
    )
    with _without_pickle_warning():
        return mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example_x,
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            pyfunc_predict_fn="predict_proba",
            # cloudpickle, MLflow's default on Databricks: loading a skops model imports skops,
            # whose trusted-types scan imports every sklearn module (~5 s of each `ml score`,
            # bench/bench_score.py), and MLflow gates both formats behind the same
            # MLFLOW_ALLOW_PICKLE_DESERIALIZATION flag (skops' allow-list comes from the model).
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )


def register_version(
    model_uri: str, name: str, alias: str | None, tags: dict[str, str] | None = None
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` (with ``tags``) and move ``alias``
    to it (none if ``None``); a registry that refuses is a one-line :class:`TrackingError`."""
    import mlflow
    from mlflow import MlflowClient

    try:
        version = mlflow.register_model(model_uri, name, tags=tags)
        if alias:
            MlflowClient().set_registered_model_alias(name, alias, version.version)
    except Exception as exc:
        raise TrackingError(
            f"could not register {name} in the model registry ({first_line(exc)}); "
            "check mlflow.registry_uri"
        ) from None
    return version


def register_fitted(
    rt: Runtime, model: Any, x: pd.DataFrame, alias: str | None, run_name: str
) -> ModelVersion:
    """Register a classifier fitted on ``x`` outside ``ml train`` (benchmarks, tests) as a new
    version of the runtime's model, exactly as ``ml train`` registers its best candidate: logged
    by :func:`log_model` (signature of ``x``'s first 1,000 rows, its first 5 as the input
    example) in a new run ``run_name`` of the runtime's experiment, then registered by
    :func:`register_version` with ``alias``. The version's ``run_id`` is that run's."""
    import mlflow

    rt.configure_mlflow()
    with mlflow.start_run(run_name=run_name):
        info = log_model(model, x.head(1000), x.head(5))
    return register_version(info.model_uri, rt.model_name, alias)


class _PickleWarningFilter(logging.Filter):
    """Drops MLflow's warning that cloudpickle is not skops (the format is chosen, see train)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pickle or cloudpickle format" not in record.getMessage()


@contextmanager
def _without_pickle_warning() -> Iterator[None]:
    logger = logging.getLogger("mlflow.sklearn")
    quiet = _PickleWarningFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
