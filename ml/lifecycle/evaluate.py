"""``ml evaluate --protocol prequential``: the handbook's prequential validation.

``folds`` (default ``training.prequential_folds`` = 4) train / delay / test blocks (default
7 / 7 / 7 days); fold 0 ends at the last mature test day (or ``training.test_end``), each further
fold is shifted back by the test-window length (one week). Every candidate is fitted on each fold's
training set (point-in-time labels) and scored on its test set (known-compromised cards removed,
by ``training.known_compromised``), exactly as ``ml train`` does. The spread over folds is the population standard deviation
(``ddof=0``), as in the handbook.

Results are one MLflow run (``<candidate>.<metric>_mean`` / ``_std`` metrics, the fold table as an
artifact) and a :class:`PrequentialResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ml.lifecycle import candidates as models
from ml.lifecycle import data, metrics
from ml.lifecycle.data import Windows
from ml.lifecycle.train import evaluate_candidate, fit_candidate
from ml.platform import lineage
from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime

PROTOCOLS = ("prequential",)
FOLD_TABLE = "prequential_folds.csv"


def summary_metrics(top_k: int) -> tuple[str, ...]:
    """The metrics summarised as mean ± std: ROC AUC, average precision, Card Precision@k."""
    return ("roc_auc", "average_precision", metrics.card_precision_key(top_k))


@dataclass
class PrequentialResult:
    """Per-fold metrics and their mean / std per candidate."""

    windows: list[Windows]
    folds: pd.DataFrame  # one row per (fold, candidate): windows, sizes and all metrics
    summary: pd.DataFrame  # one row per candidate: <metric>_mean, <metric>_std for summary_metrics
    metric_names: tuple[str, ...]
    run_id: str | None = None

    def mean_std(self, candidate: str, metric: str) -> tuple[float, float]:
        row = self.summary.loc[candidate]
        return float(row[f"{metric}_mean"]), float(row[f"{metric}_std"])


def _summarise(folds: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    grouped = folds.groupby("candidate", sort=False)[list(names)]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=0).add_suffix("_std")
    columns = [c for name in names for c in (f"{name}_mean", f"{name}_std")]
    return mean.join(std)[columns]


def prequential(rt: Runtime, *, track: bool = True) -> PrequentialResult:
    """Run the prequential protocol (``training.prequential_folds`` folds of the
    ``training.candidates``) over the feature table; log it to MLflow if ``track``."""
    settings = rt.settings
    training = settings.training
    names = models.check_candidates(training.candidates)
    n_folds = training.prequential_folds
    label = settings.model.label
    with rt.warehouse(read_only=True) as wh:
        first, last = data.table_date_range(wh, settings)
        latest = data.default_windows(training, last)
        windows = data.prequential_windows(latest, n_folds)
        earliest = windows[-1]
        if earliest.train_start < first:
            raise data.EmptyWindowError(
                f"{n_folds} prequential folds need data from {earliest.train_start}, but the feature "
                f"table starts on {first}; use fewer --folds or an earlier history"
            )
        frame = data.read_features(wh, settings, earliest.train_start, latest.test_end)

    rows = []
    with models.thread_limit(training.n_threads):
        for fold, fold_windows in enumerate(windows):
            split = data.split_frame(frame, fold_windows, label, training.known_compromised)
            for name in names:
                pipeline = fit_candidate(name, split.train, settings)
                _, fold_metrics = evaluate_candidate(pipeline, split.test, settings)
                rows.append(
                    {
                        "fold": fold,
                        "candidate": name,
                        **fold_windows.as_dict(),
                        "train_rows": len(split.train),
                        "train_frauds": int(split.train[label].sum()),
                        "test_rows": len(split.test),
                        **fold_metrics,
                    }
                )
    fold_table = pd.DataFrame(rows)
    names_summary = summary_metrics(settings.model.top_k_cards)
    summary = _summarise(fold_table, names_summary)
    result = PrequentialResult(
        windows=windows, folds=fold_table, summary=summary, metric_names=names_summary
    )
    if track:
        result.run_id = _log(result, rt, names)
    return result


def _log(result: PrequentialResult, rt: Runtime, names: list[str]) -> str:
    import mlflow

    settings = rt.settings
    rt.configure_mlflow()
    tags = {
        **lineage.lineage_tags(settings, rt.dbt_target_path),
        "fraudops.command": "evaluate",
        "protocol": "prequential",
    }
    latest = result.windows[0]
    with mlflow.start_run(run_name=f"prequential {latest.test_end}", tags=tags) as run:
        mlflow.log_params(
            {
                "protocol": "prequential",
                "folds": len(result.windows),
                "candidates": ",".join(names),
                "train_days": (latest.train_end - latest.train_start).days + 1,
                "delay_days": latest.delay_days,
                "test_days": (latest.test_end - latest.test_start).days + 1,
                "first_train_start": result.windows[-1].train_start.isoformat(),
                "last_test_end": latest.test_end.isoformat(),
                "feature_table": settings.model.feature_table,
                "top_k_cards": settings.model.top_k_cards,
                "known_compromised": settings.training.known_compromised,
                **{
                    f"model.{n}.{k}": v
                    for n in names
                    for k, v in models.candidate_params(
                        n, settings.training.hyperparameters
                    ).items()
                },
            }
        )
        values = {
            f"{candidate}.{column}": float(value)
            for candidate, row in result.summary.iterrows()
            for column, value in row.items()
            if math.isfinite(value)
        }
        mlflow.log_metrics(values)
        mlflow.log_text(result.folds.to_csv(index=False), FOLD_TABLE)
        mlflow.log_table(result.folds, "prequential_folds.json")
    return run.info.run_id


def evaluate(rt: Runtime, protocol: str = "prequential") -> PrequentialResult:
    """Dispatch on ``protocol`` (only ``prequential`` so far)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    return prequential(rt)
