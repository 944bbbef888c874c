"""``ml train``: fit the candidates on a time window, evaluate them on a later one, register the best.

One MLflow parent run per call, one nested run per candidate. Each candidate run holds its
parameters, test metrics (:func:`ml.lifecycle.metrics.compute_metrics`), PR / ROC curves, confusion matrix
and permutation feature importances (images + CSV), the training and test datasets as MLflow
inputs, and the model (with signature and input example). The candidate with the highest test
average precision is registered as ``settings.model.name`` and gets the alias ``challenger``
(never stages); its version is tagged with its metrics, the windows and the lineage (git commit,
dbt invocation). The training reference distribution of every feature (ml/reference.py) is
logged as an artifact and written to ``scoring.feature_reference`` (+ ``_sample``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ml.lifecycle import candidates as models
from ml.lifecycle import data, metrics, reference
from ml.lifecycle.data import Split, Windows
from ml.lifecycle.metrics import finite
from ml.lifecycle.model_log import log_model, register_version
from ml.lifecycle.registry import CHALLENGER
from ml.platform import lineage
from ml.platform.errors import DataNotReadyError
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings

if TYPE_CHECKING:
    pass


@dataclass
class CandidateResult:
    """One trained candidate: its nested run, logged model and test metrics."""

    name: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What ``ml train`` did."""

    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    best_candidate: str
    windows: Windows
    candidates: list[CandidateResult]
    train_rows: int
    test_rows: int
    reference_rows: tuple[int, int] = (0, 0)

    @property
    def best(self) -> CandidateResult:
        return next(c for c in self.candidates if c.name == self.best_candidate)


def fit_candidate(name: str, train: pd.DataFrame, settings: Settings) -> Pipeline:
    """Fit candidate ``name`` on ``train`` (features of settings, point-in-time label)."""
    pipeline = models.build_candidate(
        name, settings.training.hyperparameters, settings.training.random_state
    )
    features = settings.model.features
    pipeline.fit(data.feature_matrix(train, features), train[settings.model.label].to_numpy())
    return pipeline


def score(pipeline: Pipeline, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Fraud scores (probability of the positive class)."""
    return pipeline.predict_proba(data.feature_matrix(frame, features))[:, 1]


def evaluate_candidate(
    pipeline: Pipeline, test: pd.DataFrame, settings: Settings
) -> tuple[np.ndarray, dict[str, float]]:
    """Scores and all metrics of a fitted pipeline on a test set."""
    scores = score(pipeline, test, settings.model.features)
    return scores, metrics.compute_metrics(
        scores,
        None,
        test,
        threshold=settings.model.alert_threshold,
        top_k=settings.model.top_k_cards,
        label_column=settings.model.label,
    )


# --- MLflow logging helpers --------------------------------------------------------------------


def _dataset(
    frame: pd.DataFrame, settings: Settings, source: str | None, start: dt.date, end: dt.date
):
    import warnings

    import mlflow

    columns = [*data.ID_COLUMNS, *settings.model.features, settings.model.label]
    with warnings.catch_warnings():
        # "source can be interpreted in multiple ways" (file path) and "integer columns" (ids)
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            frame[columns],
            source=source,
            name=settings.model.feature_table,
            targets=settings.model.label,
        )
        dataset.schema  # noqa: B018 - inferred lazily; infer it here, under the filter
    return dataset, {"start": start.isoformat(), "end": end.isoformat(), "rows": str(len(frame))}


def _log_plots(labels: np.ndarray, scores: np.ndarray, threshold: float, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    plots = {
        "plots/pr_curve.png": lambda ax: PrecisionRecallDisplay.from_predictions(
            labels, scores, name=name, ax=ax
        ),
        "plots/roc_curve.png": lambda ax: RocCurveDisplay.from_predictions(
            labels, scores, name=name, ax=ax
        ),
        "plots/confusion_matrix.png": lambda ax: ConfusionMatrixDisplay.from_predictions(
            labels,
            (scores >= threshold).astype(int),
            labels=[0, 1],
            display_labels=["genuine", "fraud"],
            ax=ax,
        ),
    }
    for artifact, draw in plots.items():
        fig, ax = plt.subplots(figsize=(6, 5))
        try:
            draw(ax)
            if "confusion" in artifact:
                ax.set_title(f"{name} at threshold {threshold:g}")
            mlflow.log_figure(fig, artifact)
        finally:
            plt.close(fig)


def feature_importance(
    pipeline: Pipeline, test: pd.DataFrame, settings: Settings
) -> pd.DataFrame | None:
    """Permutation importance (drop of average precision) on a sample of the test set;
    ``None`` if the sample holds a single class."""
    from sklearn.inspection import permutation_importance

    training = settings.training
    sample = test
    if len(test) > training.importance_max_rows:
        sample = test.sample(training.importance_max_rows, random_state=training.random_state)
    labels = sample[settings.model.label].to_numpy()
    if len(np.unique(labels)) < 2:
        return None
    result = permutation_importance(
        pipeline,
        data.feature_matrix(sample, settings.model.features),
        labels,
        scoring="average_precision",
        n_repeats=training.importance_repeats,
        random_state=training.random_state,
    )
    return (
        pd.DataFrame(
            {
                "feature": settings.model.features,
                "importance_mean": result.importances_mean,
                "importance_std": result.importances_std,
            }
        )
        .sort_values("importance_mean", ascending=False)
        .reset_index(drop=True)
    )


def _log_importance(importance: pd.DataFrame, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.log_text(importance.to_csv(index=False), "feature_importance.csv")
    ordered = importance.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 6))
    try:
        ax.barh(ordered["feature"], ordered["importance_mean"], xerr=ordered["importance_std"])
        ax.set_xlabel("drop of average precision when permuted")
        ax.set_title(f"{name}: permutation importance (test sample)")
        fig.tight_layout()
        mlflow.log_figure(fig, "plots/feature_importance.png")
    finally:
        plt.close(fig)


def _train_candidate(
    name: str,
    split: Split,
    settings: Settings,
    datasets: dict[str, Any],
    parent_tags: dict[str, str],
) -> CandidateResult:
    import mlflow

    features = settings.model.features
    params = models.candidate_params(name, settings.training.hyperparameters)
    with mlflow.start_run(
        run_name=name, nested=True, tags={**parent_tags, "candidate": name}
    ) as run:
        mlflow.log_params({"candidate": name, **{f"model.{k}": v for k, v in params.items()}})
        for context, (dataset, tags) in datasets.items():
            mlflow.log_input(dataset, context=context, tags=tags)
        pipeline = fit_candidate(name, split.train, settings)
        scores, test_metrics = evaluate_candidate(pipeline, split.test, settings)
        info = log_model(
            pipeline,
            data.feature_matrix(split.train.head(1000), features),
            data.feature_matrix(split.test.head(5), features),
        )
        test_dataset = datasets["testing"][0]
        mlflow.log_metrics(finite(test_metrics), model_id=info.model_id, dataset=test_dataset)
        labels = split.test[settings.model.label].to_numpy()
        if len(np.unique(labels)) > 1:
            _log_plots(labels, scores, settings.model.alert_threshold, name)
        importance = feature_importance(pipeline, split.test, settings)
        if importance is not None:
            _log_importance(importance, name)
    return CandidateResult(
        name=name,
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        metrics=test_metrics,
        params=params,
    )


def _best(results: list[CandidateResult]) -> CandidateResult:
    def key(result: CandidateResult) -> float:
        ap = result.metrics.get("average_precision", float("nan"))
        return ap if math.isfinite(ap) else -math.inf

    return max(results, key=key)


def _register(
    best: CandidateResult, windows: Windows, settings: Settings, tags: dict[str, str]
) -> str:
    version_tags = {
        **tags,
        **windows.as_dict(),
        "candidate": best.name,
        "run_id": best.run_id,
        **{f"test_{k}": f"{v:.6g}" for k, v in best.metrics.items()},
    }
    version = register_version(best.model_uri, settings.model.name, CHALLENGER, version_tags)
    return str(version.version)


def load_training_split(rt: Runtime) -> tuple[Split, str]:
    """Resolve the windows of ``training`` against the feature table and load the split; also
    return the table's location (for the MLflow dataset source)."""
    settings = rt.settings
    with rt.warehouse(read_only=True) as wh:
        first, last = data.table_date_range(wh, settings)
        windows = data.default_windows(settings.training, last)
        if windows.train_end < first:
            raise data.EmptyWindowError(
                f"the training window {windows.train_start}..{windows.train_end} is before the first "
                f"transaction day {first}; load more data or use a later --test-end"
            )
        split = data.load_split(wh, settings, windows)
        location = wh.location(settings.model.feature_table)
    return split, location


def train(rt: Runtime) -> TrainResult:
    """Train the ``training.candidates`` on the ``training`` windows, evaluate, log and register
    the best; return the run, the new version and the metrics."""
    import mlflow

    settings = rt.settings
    names = models.check_candidates(settings.training.candidates)
    split, location = load_training_split(rt)
    windows = split.windows
    ref = reference.compute_reference(
        split.train,
        settings.model.features,
        settings.training.reference_bins,
        settings.training.reference_quantiles,
    )
    experiment_id = rt.configure_mlflow()
    lineage_tags = lineage.lineage_tags(settings, rt.dbt_target_path)
    source = Path(location).resolve().as_uri() if Path(location).exists() else None
    datasets = {
        "training": _dataset(split.train, settings, source, windows.train_start, windows.train_end),
        "testing": _dataset(split.test, settings, source, windows.test_start, windows.test_end),
    }
    tags = {
        **lineage_tags,
        "feature_table": settings.model.feature_table,
        "fraudops.command": "train",
    }
    with mlflow.start_run(run_name=f"train {windows.test_end}", tags=tags) as parent:
        mlflow.log_params(
            {
                **windows.as_dict(),
                "delay_days": windows.delay_days,
                "label_cutoff": windows.label_cutoff.isoformat(),
                "feature_table": settings.model.feature_table,
                "features": ",".join(settings.model.features),
                "candidates": ",".join(names),
                "alert_threshold": settings.model.alert_threshold,
                "top_k_cards": settings.model.top_k_cards,
                "random_state": settings.training.random_state,
                "known_compromised": settings.training.known_compromised,
            }
        )
        mlflow.log_metrics(
            {
                **{
                    f"train_{k}": float(v)
                    for k, v in data.describe_frame(split.train, settings.model.label).items()
                },
                **{
                    f"test_{k}": float(v)
                    for k, v in data.describe_frame(split.test, settings.model.label).items()
                },
            }
        )
        for context, (dataset, dataset_tags) in datasets.items():
            mlflow.log_input(dataset, context=context, tags=dataset_tags)
        with models.thread_limit(settings.training.n_threads):
            results = [_train_candidate(name, split, settings, datasets, tags) for name in names]
        for result in results:
            mlflow.log_metrics({f"{result.name}.{k}": v for k, v in finite(result.metrics).items()})
        best = _best(results)
        version = _register(best, windows, settings, lineage_tags)
        mlflow.set_tags(
            {
                "best_candidate": best.name,
                "model_name": settings.model.name,
                "model_version": version,
            }
        )
        reference_doc = {
            "model_name": settings.model.name,
            "model_version": version,
            **windows.as_dict(),
            "features": ref.to_dict(),
        }
        mlflow.log_dict(reference_doc, reference.ARTIFACT_FILE)
        mlflow.MlflowClient().log_dict(best.run_id, reference_doc, reference.ARTIFACT_FILE)
    try:
        registered = rt.registry().get_model_version(settings.model.name, version)
        added = reference.ensure_feature_reference(rt, registered, ref)
    except DataNotReadyError as exc:
        raise DataNotReadyError(
            f"model version {version} registered, but its feature reference was not written: {exc}"
        ) from None
    return TrainResult(
        run_id=parent.info.run_id,
        experiment_id=experiment_id,
        model_name=settings.model.name,
        model_version=version,
        best_candidate=best.name,
        windows=windows,
        candidates=results,
        train_rows=len(split.train),
        test_rows=len(split.test),
        reference_rows=added,
    )
