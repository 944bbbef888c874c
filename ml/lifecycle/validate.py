"""``ml validate``: compare ``@challenger`` with ``@champion`` on the most recent mature test
window and write the verdict to the version (tags + description) and to an MLflow run.

Validation rules use MLflow's own rule engine (``mlflow.models.MetricThreshold`` +
``mlflow.validate_evaluation_results``). MetricThreshold cannot express "at most ``x`` worse
than the baseline" (its ``min_absolute_change`` must be positive, i.e. an improvement), so the
no-regression rules check a derived metric, ``<metric>_regression = champion - challenger``,
against ``threshold=max_regression`` with ``greater_is_better=False``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.lifecycle import data, metrics
from ml.lifecycle.loaded_model import LoadedModel, check_signature, load_model
from ml.lifecycle.registry import CHALLENGER, CHAMPION, current_user, now, version_by_alias
from ml.platform import lineage
from ml.platform.errors import ModelRegistryError
from ml.platform.mlflow_store import quiet_mlflow
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings
from ml.platform.tables import CUSTOMER_COLUMN, DATE_COLUMN, ID_COLUMNS

if TYPE_CHECKING:
    from mlflow import MlflowClient

VALIDATION_ARTIFACT = "validation.json"
DESCRIPTION_MARKER = "<!-- ml validate -->"  # the validation section starts here


@dataclass(frozen=True)
class Rule:
    """One validation rule and its outcome."""

    name: str
    metric: str  # the metric MLflow checks (a model metric or a derived one)
    value: float
    threshold: float
    greater_is_better: bool
    passed: bool
    description: str

    @property
    def comparison(self) -> str:
        return ">=" if self.greater_is_better else "<="


@dataclass
class ValidationReport:
    """The verdict of :func:`validate`."""

    model_name: str
    challenger_version: str
    champion_version: str | None
    windows: data.Windows
    rules: list[Rule]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    test_rows: int
    test_frauds: int
    run_id: str = ""
    validated_at: str = ""

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def failed_rules(self) -> list[Rule]:
        return [rule for rule in self.rules if not rule.passed]

    def summary(self) -> str:
        """One line: verdict, versions and the failed rules."""
        against = (
            f"champion v{self.champion_version}"
            if self.champion_version
            else "no champion (minimums only)"
        )
        head = f"{self.model_name} v{self.challenger_version} {self.status.upper()} validation against {against}"
        if self.passed:
            return head
        fails = "; ".join(
            f"{r.name}: {r.value:.4f} not {r.comparison} {r.threshold:g}" for r in self.failed_rules
        )
        return f"{head}: {fails}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "challenger_version": self.challenger_version,
            "champion_version": self.champion_version,
            "status": self.status,
            "validated_at": self.validated_at,
            "run_id": self.run_id,
            "window": self.windows.as_dict(),
            "test_rows": self.test_rows,
            "test_frauds": self.test_frauds,
            "rules": [{**asdict(r), "comparison": r.comparison} for r in self.rules],
            "challenger_metrics": self.challenger_metrics,
            "champion_metrics": self.champion_metrics,
        }


def _mlflow_check(metric: str, value: float, threshold: Any) -> bool:
    """Whether ``value`` of ``metric`` passes ``threshold`` (a MetricThreshold), per MLflow."""
    import mlflow
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    try:
        with quiet_mlflow():
            mlflow.validate_evaluation_results(
                {metric: threshold}, EvaluationResult(metrics={metric: value}, artifacts={})
            )
    except ModelValidationFailedException:
        return False
    return True


def _rule(
    name: str,
    metric: str,
    value: float,
    threshold: float,
    greater_is_better: bool,
    description: str,
) -> Rule:
    from mlflow.models import MetricThreshold

    check = MetricThreshold(threshold=float(threshold), greater_is_better=greater_is_better)
    value = float(value)
    passed = math.isfinite(value) and _mlflow_check(metric, value, check)
    return Rule(name, metric, value, float(threshold), greater_is_better, passed, description)


def training_overlap_days(version_tags: dict[str, str], windows: data.Windows) -> float | None:
    """Days of the validation test window that the version was trained on (from its
    ``train_start``/``train_end`` tags, written by ml train); ``None`` if it has no such tags."""
    try:
        train_start = dt.date.fromisoformat(version_tags["train_start"])
        train_end = dt.date.fromisoformat(version_tags["train_end"])
    except (KeyError, ValueError):
        return None
    first = max(train_start, windows.test_start)
    last = min(train_end, windows.test_end)
    return float(max(0, (last - first).days + 1))


def validation_rules(
    settings: Settings,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    overlap_days: float | None = None,
    card_precision_ceiling: float = 1.0,
) -> list[Rule]:
    """The rules of ``settings.validation``: absolute minimums for the challenger, no regression
    against the champion (if there is one), and no overlap of its training and test windows.

    Card Precision@k cannot exceed (frauded cards of the day) / k: its minimum is scaled by
    ``card_precision_ceiling``, that bound averaged over the test days (:func:`cp_ceiling`)."""
    rules_cfg = settings.validation
    k = settings.model.top_k_cards
    cp = metrics.card_precision_key(k)
    cp_minimum = rules_cfg.min_card_precision_at_100 * card_precision_ceiling
    minimums = [
        ("roc_auc", rules_cfg.min_roc_auc, "ROC AUC"),
        ("average_precision", rules_cfg.min_average_precision, "average precision"),
        (
            cp,
            cp_minimum,
            f"Card Precision@{k} (minimum x the best reachable, {card_precision_ceiling:.3f})",
        ),
    ]
    rules = [
        _rule(
            f"min_{metric}",
            metric,
            challenger.get(metric, math.nan),
            threshold,
            True,
            f"challenger {label} >= minimum",
        )
        for metric, threshold, label in minimums
    ]
    if champion is not None:
        for metric, label in (
            ("average_precision", "average precision"),
            (cp, f"Card Precision@{settings.model.top_k_cards}"),
        ):
            regression = champion.get(metric, math.nan) - challenger.get(metric, math.nan)
            rules.append(
                _rule(
                    f"no_regression_{metric}",
                    f"{metric}_regression",
                    regression,
                    rules_cfg.max_regression,
                    False,
                    f"champion {label} - challenger {label} <= max regression",
                )
            )
    if overlap_days is not None:
        rules.append(
            _rule(
                "fresh_test_window",
                "training_overlap_days",
                overlap_days,
                0.0,
                False,
                "days of the test window the challenger was trained on",
            )
        )
    return rules


def cp_ceiling(test: pd.DataFrame, settings: Settings) -> float:
    """The best Card Precision@k reachable on ``test``: per day min(1, frauded cards / k), averaged.
    A world with 7 frauded cards a day caps CP@100 at 0.07, whatever the model."""
    k = settings.model.top_k_cards
    frauds = test.loc[test[settings.model.label] == 1]
    days = test[DATE_COLUMN].nunique()
    if not days:
        return 1.0
    cards = frauds.groupby(DATE_COLUMN)[CUSTOMER_COLUMN].nunique()
    return float(np.minimum(1.0, cards / k).sum() / days)


def evaluate_version(
    model: LoadedModel, test: pd.DataFrame, settings: Settings
) -> dict[str, float]:
    """All metrics (ml.lifecycle.metrics.compute_metrics) of a loaded version on a test set."""
    return metrics.compute_metrics(
        model.scores(test, settings.scoring.n_threads),
        None,
        test,
        threshold=settings.model.alert_threshold,
        top_k=settings.model.top_k_cards,
        label_column=settings.model.label,
    )


def load_validation_set(rt: Runtime) -> tuple[data.Windows, pd.DataFrame, str]:
    """The most recent mature test window (or the one ending ``validation.test_end``), its test
    set without known-compromised cards, and its location."""
    settings = rt.settings
    with rt.warehouse(read_only=True) as wh:
        _, last = data.table_date_range(wh, settings)
        windows = data.default_windows(
            settings.training, last, test_end=settings.validation.test_end
        )
        test = data.load_test_set(wh, settings, windows)
        location = wh.location(settings.model.feature_table)
    if int(test[settings.model.label].sum()) == 0:
        raise data.EmptyWindowError(
            f"no fraud in the validation window {windows.test_start}..{windows.test_end}, so no model "
            "can be ranked on it; choose another --test-end"
        )
    return windows, test, location


def _description(previous: str | None, report: ValidationReport) -> str:
    """The version's description with its validation section replaced."""
    lines = [
        f"**Validation {report.status.upper()}** ({report.validated_at}, run {report.run_id}) on "
        f"{report.windows.test_start}..{report.windows.test_end} ({report.test_rows} transactions, "
        f"{report.test_frauds} frauds), against "
        + (f"champion v{report.champion_version}" if report.champion_version else "no champion")
        + ":",
        "",
    ]
    for rule in report.rules:
        mark = "pass" if rule.passed else "FAIL"
        lines.append(
            f"- {mark} `{rule.name}`: {rule.value:.4f} {rule.comparison} {rule.threshold:g} ({rule.description})"
        )
    head = (previous or "").split(DESCRIPTION_MARKER)[0].rstrip()
    return (f"{head}\n\n" if head else "") + f"{DESCRIPTION_MARKER}\n" + "\n".join(lines)


def _record_validation(
    client: MlflowClient,
    report: ValidationReport,
    test: pd.DataFrame,
    location: str,
    rt: Runtime,
    model_ids: dict[str, str | None],
) -> None:
    """An MLflow run (metrics of both models, rules, JSON verdict) and the challenger's tags."""
    import mlflow

    settings = rt.settings
    name, version = report.model_name, report.challenger_version
    cp = metrics.card_precision_key(settings.model.top_k_cards)
    source = Path(location).resolve().as_uri() if Path(location).exists() else location
    columns = list(dict.fromkeys([*ID_COLUMNS, *settings.model.features, settings.model.label]))
    with quiet_mlflow():
        dataset = mlflow.data.from_pandas(
            test[[c for c in columns if c in test.columns]],
            source=source,
            name=settings.model.feature_table,
            targets=settings.model.label,
        )
    tags = {
        **lineage.lineage_tags(settings, rt.dbt_target_path),
        "fraudops.command": "validate",
        "model_name": name,
        "challenger_version": version,
        "champion_version": report.champion_version or "none",
        "validation_status": report.status,
    }
    with mlflow.start_run(run_name=f"validate v{version}", tags=tags) as run:
        report.run_id = run.info.run_id
        mlflow.log_params(
            {
                **{f"window.{k}": v for k, v in report.windows.as_dict().items()},
                **{f"threshold.{r.name}": r.threshold for r in report.rules},
                "alert_threshold": settings.model.alert_threshold,
                "top_k_cards": settings.model.top_k_cards,
            }
        )
        mlflow.log_input(dataset, context="validation", tags={"rows": str(len(test))})
        mlflow.log_metrics(
            {
                **{
                    f"challenger.{k}": v
                    for k, v in metrics.finite(report.challenger_metrics).items()
                },
                **{
                    f"champion.{k}": v
                    for k, v in metrics.finite(report.champion_metrics or {}).items()
                },
                **{f"rule.{r.name}": r.value for r in report.rules if math.isfinite(r.value)},
            }
        )
        for role, model_metrics in (
            ("challenger", report.challenger_metrics),
            ("champion", report.champion_metrics),
        ):
            if model_metrics and model_ids.get(
                role
            ):  # the metrics also show on the logged model's page
                mlflow.log_metrics(
                    metrics.finite(model_metrics), model_id=model_ids[role], dataset=dataset
                )
        mlflow.set_tags(
            {f"rule.{r.name}": "passed" if r.passed else "failed" for r in report.rules}
        )
        mlflow.log_dict(report.to_dict(), VALIDATION_ARTIFACT)
    version_tags = {
        "validation_run_id": report.run_id,
        "validated_at": report.validated_at,
        "validated_by": current_user(),
        "validated_against": report.champion_version or "none",
        "validation_window": f"{report.windows.test_start}..{report.windows.test_end}",
        "validation_failed_rules": ",".join(r.name for r in report.failed_rules) or "none",
        **{
            f"validation_{k}": f"{report.challenger_metrics.get(k, math.nan):.6g}"
            for k in ("roc_auc", "average_precision", cp)
        },
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    current = client.get_model_version(name, version)
    client.update_model_version(
        name, version, description=_description(current.description, report)
    )
    # last: promotion reads this tag, so it is only "passed" once everything else is recorded
    client.set_model_version_tag(name, version, "validation_status", report.status)


def validate(rt: Runtime) -> ValidationReport:
    """Compare ``@challenger`` with ``@champion`` on the validation window and record the verdict.

    Returns the report (``report.passed``); the caller decides what a failure means (the CLI
    exits with :class:`ml.errors.ValidationFailed`'s code 2).
    """
    settings = rt.settings
    name = settings.model.name
    client = rt.registry()
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise ModelRegistryError(
            f"model {name} has no version with alias '{CHALLENGER}'; run ml train first"
        )
    champion = version_by_alias(client, name, CHAMPION)
    if champion is not None and str(champion.version) == str(challenger.version):
        raise ModelRegistryError(
            f"{name} v{challenger.version} is both challenger and champion; train a new challenger with ml train"
        )
    windows, test, location = load_validation_set(rt)
    columns = list(test.columns)
    challenger_model = load_model(
        name, str(challenger.version), if_damaged="train a new challenger with ml train"
    )
    check_signature(challenger_model, settings.model.feature_table, columns)
    challenger_metrics = evaluate_version(challenger_model, test, settings)
    champion_metrics = None
    if champion is not None:
        champion_model = load_model(name, str(champion.version))
        check_signature(champion_model, settings.model.feature_table, columns)
        champion_metrics = evaluate_version(champion_model, test, settings)
    rules = validation_rules(
        settings,
        challenger_metrics,
        champion_metrics,
        training_overlap_days(dict(challenger.tags), windows),
        cp_ceiling(test, settings),
    )
    report = ValidationReport(
        model_name=name,
        challenger_version=str(challenger.version),
        champion_version=str(champion.version) if champion is not None else None,
        windows=windows,
        rules=rules,
        challenger_metrics=challenger_metrics,
        champion_metrics=champion_metrics,
        test_rows=len(test),
        test_frauds=int(test[settings.model.label].sum()),
        validated_at=now(),
    )
    model_ids = {
        "challenger": getattr(challenger, "model_id", None),
        "champion": getattr(champion, "model_id", None) if champion is not None else None,
    }
    with quiet_mlflow():
        _record_validation(client, report, test, location, rt, model_ids)
    return report
