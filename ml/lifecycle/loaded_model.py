"""A registered model version, loaded for scoring: its signature's inputs and a predictor."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.lifecycle import data
from ml.lifecycle.registry import model_uri
from ml.platform.errors import ModelRegistryError, first_line
from ml.platform.mlflow_store import quiet_mlflow

_NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}
MIN_CHUNK_ROWS = 50_000  # below this, one thread predicts faster than several


class SignatureMismatchError(ModelRegistryError):
    """A registered model's signature does not fit the feature table."""


@dataclass
class ModelInputs:
    """What a registered model version reads: its signature's input columns, in order, each with
    its MLflow type name (``double``...)."""

    name: str
    version: str
    inputs: dict[str, str]

    @property
    def columns(self) -> list[str]:
        return list(self.inputs)


@dataclass
class LoadedModel(ModelInputs):
    """A registered model version ready to score: its inputs and a predictor."""

    flavor: str
    _predict: Callable[[pd.DataFrame], np.ndarray] = field(repr=False)
    # the fitted scikit-learn model (sklearn flavor; None for pyfunc): ml.lifecycle.explain reads it
    estimator: Any = field(default=None, repr=False)

    def scores(
        self, frame: pd.DataFrame, n_threads: int | None = 1, min_chunk_rows: int = MIN_CHUNK_ROWS
    ) -> np.ndarray:
        """Fraud scores of the rows of ``frame`` (the input columns in signature order, float64).

        With ``n_threads`` > 1 (``None``: all cores) the rows are cut into contiguous chunks of at
        least ``min_chunk_rows``, predicted by that many Python threads, each limited to one
        OpenMP thread (sklearn's tree predictors release the GIL). Same scores as one call, but
        no OpenMP barrier per tree: on a busy machine OpenMP threads spin-wait on each other at
        every tree and waste half the CPU (bench/bench_score.py).
        """
        return self.predict_matrix(
            data.feature_matrix(frame, self.columns), n_threads, min_chunk_rows
        )

    def predict_matrix(
        self, x: pd.DataFrame, n_threads: int | None = 1, min_chunk_rows: int = MIN_CHUNK_ROWS
    ) -> np.ndarray:
        """:meth:`scores` of ``data.feature_matrix(frame, self.columns)`` (``ml score`` builds
        it while the model loads)."""
        if x.empty:
            return np.empty(0, dtype="float64")
        from threadpoolctl import threadpool_limits

        workers = max(1, n_threads or _usable_cores())
        chunks = max(1, min(workers, len(x) // max(1, min_chunk_rows)))
        bounds = np.linspace(0, len(x), chunks + 1).astype("int64")

        def predict(i: int) -> np.ndarray:
            with threadpool_limits(limits=1, user_api="openmp"):  # per thread: not inherited
                return np.asarray(self._predict(x.iloc[bounds[i] : bounds[i + 1]]), dtype="float64")

        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(chunks) as pool:
            return np.concatenate(list(pool.map(predict, range(chunks))))


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def load_model(
    name: str, version: str, overlap: Callable[[ModelInputs], None] | None = None
) -> LoadedModel:
    """Download version ``version`` of ``name`` once, read its signature and load it.

    ``overlap`` is called with the signature's inputs as soon as they are known, before the
    estimator is deserialised (about a second, mostly imports): ``ml score`` starts reading the
    features then, so that both happen at once.

    The sklearn flavor is loaded with ``mlflow.sklearn.load_model`` and scored with
    ``predict_proba(X)[:, 1]``. bench/bench_score.py measured it against ``mlflow.pyfunc`` on the
    default dataset (1.78M rows, gradient boosting champion): the same CPU time (8.6 vs 8.5 s);
    the sklearn flavor gives ``predict_proba`` whatever ``pyfunc_predict_fn`` the model was
    logged with, and :func:`check_signature` replaces pyfunc's per-call schema enforcement with
    one check against the feature table. Other flavors go through pyfunc (last column of a 2-D
    output is the positive class).
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    uri = model_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="fraudops-model-") as tmp, quiet_mlflow():
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise ModelRegistryError(f"cannot download {uri} ({first_line(exc)})") from None
        meta = Model.load(local)
        signature = meta.signature
        if signature is None or not signature.inputs.has_input_names():
            raise SignatureMismatchError(
                f"{name} v{version} has no column signature; retrain it with ml train (then validate and promote)"
            )
        inputs = {
            spec.name: str(getattr(spec.type, "name", spec.type))
            for spec in signature.inputs.inputs
        }
        if overlap is not None:
            overlap(ModelInputs(name, str(version), inputs))
        if "sklearn" in meta.flavors:
            import mlflow.sklearn

            estimator = mlflow.sklearn.load_model(local)

            def predict(x: pd.DataFrame) -> np.ndarray:
                return estimator.predict_proba(x)[:, 1]

            flavor = "sklearn"
        else:
            estimator = None
            pyfunc = mlflow.pyfunc.load_model(local)

            def predict(x: pd.DataFrame) -> np.ndarray:
                out = np.asarray(pyfunc.predict(x), dtype="float64")
                return out[:, -1] if out.ndim == 2 else out

            flavor = "pyfunc"
    return LoadedModel(
        name=name,
        version=str(version),
        inputs=inputs,
        flavor=flavor,
        _predict=predict,
        estimator=estimator,
    )


def check_signature(model: ModelInputs, table: str, table_columns: Sequence[str]) -> None:
    """Raise SignatureMismatchError (one line: what differs, what to do) unless every input column
    of the model's signature is a numeric column of the feature table."""
    missing = [c for c in model.columns if c not in set(table_columns)]
    if missing:
        raise SignatureMismatchError(
            f"{model.name} v{model.version} expects column(s) {', '.join(missing)} that {table} lacks; "
            "rebuild the table with dbt build, or train, validate and promote a model on the current "
            "features (ml train, ml validate, ml promote)"
        )
    odd = {c: t for c, t in model.inputs.items() if t not in _NUMERIC_TYPES}
    if odd:
        raise SignatureMismatchError(
            f"{model.name} v{model.version} expects non-numeric input(s) "
            f"{', '.join(f'{c} ({t})' for c, t in odd.items())}; the feature columns are numeric: "
            "retrain it with ml train"
        )


def check_frame_types(model: ModelInputs, table: str, frame: pd.DataFrame) -> None:
    """Raise SignatureMismatchError if a model input column of ``frame`` is not numeric."""
    odd = [
        f"{c} ({frame[c].dtype})"
        for c in model.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    if odd:
        raise SignatureMismatchError(
            f"{table} column(s) {', '.join(odd)} are not numeric as {model.name} v{model.version} "
            "expects; rebuild the table with dbt build"
        )
