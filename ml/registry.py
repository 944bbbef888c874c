"""The model registry side of fraudops: load a registered version, validate, promote, roll back.

Aliases, never stages (mlops-stacks): ``ml train`` gives the new version the alias
``challenger``; :func:`validate` compares ``@challenger`` with ``@champion`` on the most recent
mature test window and writes its verdict to the version (tags + description) and to an MLflow
run; :func:`promote` moves ``champion`` to a validated challenger (the replaced champion gets
``previous_champion``); :func:`rollback` moves ``champion`` back to ``previous_champion``.

Validation rules use MLflow's own rule engine (``mlflow.models.MetricThreshold`` +
``mlflow.validate_evaluation_results``). MetricThreshold cannot express "at most ``x`` worse
than the baseline" (its ``min_absolute_change`` must be positive, i.e. an improvement), so the
no-regression rules check a derived metric, ``<metric>_regression = champion - challenger``,
against ``threshold=max_regression`` with ``greater_is_better=False``.

Who, when and why of every promotion / rollback are tags on the versions and the params of an
MLflow run (``fraudops.command`` = ``promote`` / ``rollback``); the registered model's tag
``champion_history`` lists the champions in order, so that consecutive rollbacks walk back.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml import data, reference, tracking
from ml.errors import ModelRegistryError
from ml.settings import Settings
from ml.warehouse import Warehouse, open_warehouse

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"  # the alias ml.train gives a new version
PREVIOUS_CHAMPION = "previous_champion"
HISTORY_TAG = "champion_history"
HISTORY_LENGTH = 50
VALIDATION_ARTIFACT = "validation.json"
DESCRIPTION_MARKER = "<!-- ml validate -->"  # the validation section starts here
NEEDS_CHAMPION = "run ml train, ml validate, ml promote first"
_NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}
MIN_CHUNK_ROWS = 50_000  # below this, one thread predicts faster than several


class SignatureMismatchError(ModelRegistryError):
    """A registered model's signature does not fit the feature table."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def current_user() -> str:
    """Who runs the command: ``FRAUDOPS_USER`` (CI, jobs), else the OS user."""
    user = os.environ.get("FRAUDOPS_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


# --- registry access -----------------------------------------------------------------------------


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """No artifact progress bars and no INFO chatter from MLflow inside the block."""
    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    loggers = [logging.getLogger(n) for n in ("mlflow.models.evaluation.validation", "mlflow.store.artifact")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # mlflow.data: "The specified dataset source can be interpreted in multiple ways"
            warnings.filterwarnings("ignore", message="The specified dataset source", category=UserWarning)
            # mlflow.data schema inference on the id columns of the validation set
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved


def open_registry(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured stores (one-line TrackingError if unreachable); a client."""
    from mlflow import MlflowClient

    tracking.configure(settings)
    return MlflowClient()


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` with ``alias``; ``None`` if the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise tracking.TrackingError(f"model registry error for {name}@{alias}: {tracking._first_line(exc)}") from None
    except OSError as exc:  # connection errors of remote registries (requests' are OSErrors)
        raise tracking.TrackingError(
            f"model registry unreachable ({tracking._first_line(exc)}); check mlflow.registry_uri"
        ) from None


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Version ``version`` of ``name``; one-line ModelRegistryError if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ModelRegistryError(f"model {name} has no version {version}") from None
        raise tracking.TrackingError(f"model registry error for {name} v{version}: {tracking._first_line(exc)}") from None


def require_champion(client: MlflowClient, name: str) -> ModelVersion:
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None:
        raise ModelRegistryError(f"model {name} has no champion yet; {NEEDS_CHAMPION}")
    return champion


# --- a registered version, loaded for scoring ---------------------------------------------------


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
    # the fitted scikit-learn model (sklearn flavor; None for pyfunc): ml.explain reads it
    estimator: Any = field(default=None, repr=False)

    def scores(self, frame: pd.DataFrame, n_threads: int | None = 1, min_chunk_rows: int = MIN_CHUNK_ROWS) -> np.ndarray:
        """Fraud scores of the rows of ``frame`` (the input columns in signature order, float64).

        With ``n_threads`` > 1 (``None``: all cores) the rows are cut into contiguous chunks of at
        least ``min_chunk_rows``, predicted by that many Python threads, each limited to one
        OpenMP thread (sklearn's tree predictors release the GIL). Same scores as one call, but
        no OpenMP barrier per tree: on a busy machine OpenMP threads spin-wait on each other at
        every tree and waste half the CPU (bench/bench_score.py).
        """
        return self.predict_matrix(data.feature_matrix(frame, self.columns), n_threads, min_chunk_rows)

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


def model_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def load_model(name: str, version: str, overlap: Callable[[ModelInputs], None] | None = None) -> LoadedModel:
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
    with tempfile.TemporaryDirectory(prefix="fraudops-model-") as tmp, _quiet_mlflow():
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise ModelRegistryError(f"cannot download {uri} ({tracking._first_line(exc)})") from None
        meta = Model.load(local)
        signature = meta.signature
        if signature is None or not signature.inputs.has_input_names():
            raise SignatureMismatchError(
                f"{name} v{version} has no column signature; retrain it with ml train (then validate and promote)"
            )
        inputs = {spec.name: str(getattr(spec.type, "name", spec.type)) for spec in signature.inputs.inputs}
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
        name=name, version=str(version), inputs=inputs, flavor=flavor, _predict=predict, estimator=estimator
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


# --- validation --------------------------------------------------------------------------------


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
        against = f"champion v{self.champion_version}" if self.champion_version else "no champion (minimums only)"
        head = f"{self.model_name} v{self.challenger_version} {self.status.upper()} validation against {against}"
        if self.passed:
            return head
        fails = "; ".join(f"{r.name}: {r.value:.4f} not {r.comparison} {r.threshold:g}" for r in self.failed_rules)
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
        with _quiet_mlflow():
            mlflow.validate_evaluation_results(
                {metric: threshold}, EvaluationResult(metrics={metric: value}, artifacts={})
            )
    except ModelValidationFailedException:
        return False
    return True


def _rule(name: str, metric: str, value: float, threshold: float, greater_is_better: bool, description: str) -> Rule:
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
) -> list[Rule]:
    """The rules of ``settings.validation``: absolute minimums for the challenger, no regression
    against the champion (if there is one), and no overlap of its training and test windows."""
    from ml import metrics  # sklearn.metrics/scipy.stats: not needed by ml score

    rules_cfg = settings.validation
    cp = metrics.card_precision_key(settings.model.top_k_cards)
    minimums = [
        ("roc_auc", rules_cfg.min_roc_auc, "ROC AUC"),
        ("average_precision", rules_cfg.min_average_precision, "average precision"),
        (cp, rules_cfg.min_card_precision_at_100, f"Card Precision@{settings.model.top_k_cards}"),
    ]
    rules = [
        _rule(f"min_{metric}", metric, challenger.get(metric, math.nan), threshold, True, f"challenger {label} >= minimum")
        for metric, threshold, label in minimums
    ]
    if champion is not None:
        for metric, label in (("average_precision", "average precision"), (cp, f"Card Precision@{settings.model.top_k_cards}")):
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


def evaluate_version(model: LoadedModel, test: pd.DataFrame, settings: Settings) -> dict[str, float]:
    """All metrics (ml.metrics.compute_metrics) of a loaded version on a test set."""
    from ml import metrics

    return metrics.compute_metrics(
        model.scores(test, settings.scoring.n_threads),
        None,
        test,
        threshold=settings.model.alert_threshold,
        top_k=settings.model.top_k_cards,
        label_column=settings.model.label,
    )


def load_validation_set(
    settings: Settings, test_end: dt.date | None = None, target: str | None = None
) -> tuple[data.Windows, pd.DataFrame, str]:
    """The most recent mature test window (or the one ending ``test_end`` /
    ``validation.test_end``), its test set without known-compromised cards, and its location."""
    with open_warehouse(settings, target, read_only=True) as wh:
        _, last = data.table_date_range(wh, settings)
        windows = data.default_windows(settings.training, last, test_end=test_end or settings.validation.test_end)
        test = data.load_test_set(wh, settings, windows)
        location = wh.location(settings.model.feature_table)
    if int(test[settings.model.label].sum()) == 0:
        raise data.EmptyWindowError(
            f"no fraud in the validation window {windows.test_start}..{windows.test_end}, so no model "
            "can be ranked on it; choose another --test-end"
        )
    return windows, test, location


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


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
        lines.append(f"- {mark} `{rule.name}`: {rule.value:.4f} {rule.comparison} {rule.threshold:g} ({rule.description})")
    head = (previous or "").split(DESCRIPTION_MARKER)[0].rstrip()
    return (f"{head}\n\n" if head else "") + f"{DESCRIPTION_MARKER}\n" + "\n".join(lines)


def _record_validation(
    client: MlflowClient,
    report: ValidationReport,
    test: pd.DataFrame,
    location: str,
    settings: Settings,
    model_ids: dict[str, str | None],
) -> None:
    """An MLflow run (metrics of both models, rules, JSON verdict) and the challenger's tags."""
    import mlflow

    from ml import metrics

    name, version = report.model_name, report.challenger_version
    cp = metrics.card_precision_key(settings.model.top_k_cards)
    source = Path(location).resolve().as_uri() if Path(location).exists() else location
    columns = list(dict.fromkeys([*data.ID_COLUMNS, *settings.model.features, settings.model.label]))
    with _quiet_mlflow():
        dataset = mlflow.data.from_pandas(
            test[[c for c in columns if c in test.columns]],
            source=source,
            name=settings.model.feature_table,
            targets=settings.model.label,
        )
    tags = {
        **tracking.lineage_tags(settings),
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
                **{f"challenger.{k}": v for k, v in _finite(report.challenger_metrics).items()},
                **{f"champion.{k}": v for k, v in _finite(report.champion_metrics or {}).items()},
                **{f"rule.{r.name}": r.value for r in report.rules if math.isfinite(r.value)},
            }
        )
        for role, model_metrics in (("challenger", report.challenger_metrics), ("champion", report.champion_metrics)):
            if model_metrics and model_ids.get(role):  # the metrics also show on the logged model's page
                mlflow.log_metrics(_finite(model_metrics), model_id=model_ids[role], dataset=dataset)
        mlflow.set_tags({f"rule.{r.name}": "passed" if r.passed else "failed" for r in report.rules})
        mlflow.log_dict(report.to_dict(), VALIDATION_ARTIFACT)
    version_tags = {
        "validation_run_id": report.run_id,
        "validated_at": report.validated_at,
        "validated_by": current_user(),
        "validated_against": report.champion_version or "none",
        "validation_window": f"{report.windows.test_start}..{report.windows.test_end}",
        "validation_failed_rules": ",".join(r.name for r in report.failed_rules) or "none",
        **{f"validation_{k}": f"{report.challenger_metrics.get(k, math.nan):.6g}" for k in ("roc_auc", "average_precision", cp)},
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    current = client.get_model_version(name, version)
    client.update_model_version(name, version, description=_description(current.description, report))
    # last: promotion reads this tag, so it is only "passed" once everything else is recorded
    client.set_model_version_tag(name, version, "validation_status", report.status)


def validate(settings: Settings, *, test_end: dt.date | None = None, target: str | None = None) -> ValidationReport:
    """Compare ``@challenger`` with ``@champion`` on the validation window and record the verdict.

    Returns the report (``report.passed``); the caller decides what a failure means (the CLI
    exits with :class:`ml.errors.ValidationFailed`'s code 2).
    """
    name = settings.model.name
    client = open_registry(settings)
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise ModelRegistryError(f"model {name} has no version with alias '{CHALLENGER}'; run ml train first")
    champion = version_by_alias(client, name, CHAMPION)
    if champion is not None and str(champion.version) == str(challenger.version):
        raise ModelRegistryError(
            f"{name} v{challenger.version} is both challenger and champion; train a new challenger with ml train"
        )
    windows, test, location = load_validation_set(settings, test_end, target)
    columns = list(test.columns)
    challenger_model = load_model(name, str(challenger.version))
    check_signature(challenger_model, settings.model.feature_table, columns)
    challenger_metrics = evaluate_version(challenger_model, test, settings)
    champion_metrics = None
    if champion is not None:
        champion_model = load_model(name, str(champion.version))
        check_signature(champion_model, settings.model.feature_table, columns)
        champion_metrics = evaluate_version(champion_model, test, settings)
    rules = validation_rules(
        settings, challenger_metrics, champion_metrics, training_overlap_days(dict(challenger.tags), windows)
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
        validated_at=_now(),
    )
    model_ids = {
        "challenger": getattr(challenger, "model_id", None),
        "champion": getattr(champion, "model_id", None) if champion is not None else None,
    }
    with _quiet_mlflow():
        _record_validation(client, report, test, location, settings, model_ids)
    return report


# --- training reference of a version ------------------------------------------------------------


def reference_from_artifact(doc: dict[str, Any]) -> reference.FeatureReference:
    """The inverse of ``FeatureReference.to_dict`` (the ``features`` of ml train's
    ``feature_reference.json``): open edges (``null``) become -inf / +inf."""
    bins: list[dict[str, Any]] = []
    samples: list[pd.DataFrame] = []
    for feature, entry in doc.items():
        for b in entry["bins"]:
            bins.append(
                {
                    "feature": feature,
                    "bin_index": int(b["bin_index"]),
                    "bin_lower": -math.inf if b["bin_lower"] is None else float(b["bin_lower"]),
                    "bin_upper": math.inf if b["bin_upper"] is None else float(b["bin_upper"]),
                    "expected_fraction": float(b["expected_fraction"]),
                }
            )
        samples.append(pd.DataFrame({"feature": feature, "value": np.asarray(entry["quantiles"], dtype="float64")}))
    if not bins:
        raise ValueError("the reference artifact holds no feature")
    frame = pd.DataFrame(bins).astype({"bin_index": "int32", "bin_lower": "float64", "bin_upper": "float64"})
    return reference.FeatureReference(bins=frame, sample=pd.concat(samples, ignore_index=True))


def _quoted(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _reference_rows(wh: Warehouse, table: str, name: str, version: str) -> int:
    """Rows of a version's reference in ``table`` and ``<table>_sample`` (0 if either lacks it)."""
    counts = []
    for relation in (table, f"{table}_sample"):
        if not wh.exists(relation):
            return 0
        counts.append(
            int(
                wh.scalar(
                    f"select count(*) from {relation} "
                    f"where model_name = {_quoted(name)} and model_version = {_quoted(version)}"
                )
                or 0
            )
        )
    return min(counts)


def ensure_feature_reference(
    settings: Settings, version: ModelVersion, target: str | None = None
) -> tuple[int, int]:
    """Make sure ``scoring.feature_reference*`` hold the version's training reference (ml train
    writes it; if it is missing, write it from the run's ``feature_reference.json`` artifact).
    Returns the rows added (``(0, 0)`` if it was there)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name, number = version.name, str(version.version)
    table = settings.scoring.feature_reference_table
    with open_warehouse(settings, target) as wh:
        if _reference_rows(wh, table, name, number) > 0:
            return 0, 0
        artifact = f"runs:/{version.run_id}/{reference.ARTIFACT_FILE}"
        try:
            doc = mlflow.artifacts.load_dict(artifact)
            ref = reference_from_artifact(doc["features"])
        except (MlflowException, OSError, KeyError, TypeError, ValueError) as exc:
            raise ModelRegistryError(
                f"{name} v{number} has no training reference in {table} nor a readable {artifact} "
                f"({tracking._first_line(exc)}); train a new version with ml train"
            ) from None
        return reference.write_reference(wh, ref, name, number, table)


# --- promotion and rollback ---------------------------------------------------------------------


@dataclass(frozen=True)
class AliasChange:
    """What :func:`promote` or :func:`rollback` did."""

    action: str  # "promote" | "rollback"
    model_name: str
    champion_version: str
    replaced_version: str | None  # the champion before the change
    previous_champion_version: str | None  # alias previous_champion after the change
    user: str
    reason: str
    forced: bool
    at: str
    run_id: str
    reference_rows_added: tuple[int, int]
    validation_status: str


def _history(client: MlflowClient, name: str) -> list[str]:
    model = client.get_registered_model(name)
    raw = (model.tags or {}).get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def _set_history(client: MlflowClient, name: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[-HISTORY_LENGTH:]))


def _record_run(change: AliasChange, settings: Settings) -> str:
    import mlflow

    params = {k: ("" if v is None else str(v)) for k, v in asdict(change).items() if k not in ("run_id", "reference_rows_added")}
    tags = {"fraudops.command": change.action, "model_name": change.model_name, "champion_version": change.champion_version}
    with mlflow.start_run(run_name=f"{change.action} v{change.champion_version}", tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_dict({**params, "reference_rows_added": list(change.reference_rows_added)}, f"{change.action}.json")
    return run.info.run_id


def promotion_blocker(version: ModelVersion, champion: ModelVersion | None) -> str | None:
    """Why ``version`` may not become champion without --force (``None`` if it may)."""
    tags = dict(version.tags or {})
    status = tags.get("validation_status")
    if status != "passed":
        return f"{version.name} v{version.version} has not passed validation (validation_status={status or 'missing'})"
    expected = str(champion.version) if champion is not None else "none"
    against = tags.get("validated_against", "none")
    if against != expected:
        return (
            f"{version.name} v{version.version} was validated against champion "
            f"{'v' + against if against != 'none' else '(none)'}, but the champion is now "
            f"{'v' + expected if expected != 'none' else '(none)'}"
        )
    return None


def promote(
    settings: Settings,
    *,
    version: str | None = None,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    target: str | None = None,
    require_card: bool = False,
) -> AliasChange:
    """Move alias ``champion`` to the validated challenger (or ``version``).

    With ``require_card`` (``ml promote``) a version without its model card (ml/model_card.py)
    is refused too, unless ``force``.

    Refuses a version that has not passed :func:`validate` against the current champion unless
    ``force`` with a ``reason``. The replaced champion gets ``previous_champion``; the promoted
    version loses ``challenger``. Records who/when/why as version tags and an MLflow run, and
    makes sure the champion's training reference is in the warehouse.
    """
    reason = (reason or "").strip()
    if force and not reason:
        raise ModelRegistryError("--force needs --reason '...' saying why validation is overridden")
    name = settings.model.name
    client = open_registry(settings)
    if version is not None:
        candidate = get_version(client, name, version)
    else:
        candidate = version_by_alias(client, name, CHALLENGER)
        if candidate is None:
            raise ModelRegistryError(
                f"model {name} has no version with alias '{CHALLENGER}'; run ml train and ml validate first "
                "(or pass --version)"
            )
    number = str(candidate.version)
    champion = version_by_alias(client, name, CHAMPION)
    if champion is not None and str(champion.version) == number:
        raise ModelRegistryError(f"{name} v{number} is already the champion")
    blocker = promotion_blocker(candidate, champion)
    if require_card and not blocker:
        from ml.model_card import card_blocker

        blocker = card_blocker(candidate)
    if blocker and not force:
        raise ModelRegistryError(f"{blocker}; run ml validate, or pass --force --reason '...'")
    added = ensure_feature_reference(settings, candidate, target)

    who, at = user or current_user(), _now()
    replaced = str(champion.version) if champion is not None else None
    history = _history(client, name)
    if replaced and (not history or history[-1] != replaced):
        history.append(replaced)
    client.set_registered_model_alias(name, CHAMPION, number)
    if replaced:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, replaced)
    if CHALLENGER in (candidate.aliases or []):
        client.delete_registered_model_alias(name, CHALLENGER)
    _set_history(client, name, [*history, number])
    change = AliasChange(
        action="promote",
        model_name=name,
        champion_version=number,
        replaced_version=replaced,
        previous_champion_version=replaced,
        user=who,
        reason=reason or "passed validation",
        forced=bool(blocker),
        at=at,
        run_id="",
        reference_rows_added=added,
        validation_status=dict(candidate.tags or {}).get("validation_status", "missing"),
    )
    run_id = _record_run(change, settings)
    for key, value in {
        "promoted_at": at,
        "promoted_by": who,
        "promotion_reason": change.reason,
        "promotion_forced": str(change.forced).lower(),
        "promotion_blocker": blocker or "none",
        "promotion_run_id": run_id,
        "replaced_champion": replaced or "none",
    }.items():
        client.set_model_version_tag(name, number, key, value)
    if replaced:
        for key, value in {"demoted_at": at, "demoted_by": who, "replaced_by": number}.items():
            client.set_model_version_tag(name, replaced, key, value)
    return AliasChange(**{**asdict(change), "run_id": run_id, "reference_rows_added": added})


def rollback(settings: Settings, *, reason: str, user: str | None = None, target: str | None = None) -> AliasChange:
    """Move ``champion`` back to ``previous_champion`` (one step back in the champion history)."""
    reason = (reason or "").strip()
    if not reason:
        raise ModelRegistryError("ml rollback needs --reason '...' saying why the champion is withdrawn")
    name = settings.model.name
    client = open_registry(settings)
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise ModelRegistryError(f"model {name} has no champion to roll back; {NEEDS_CHAMPION}")
    previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise ModelRegistryError(
            f"model {name} has no '{PREVIOUS_CHAMPION}' to roll back to; promote a known-good version with "
            "ml promote --version N --force --reason '...'"
        )
    restored, withdrawn = str(previous.version), str(current.version)
    added = ensure_feature_reference(settings, previous, target)

    history = _history(client, name)
    # walk back to the restored version; the one before it (if any) becomes previous_champion
    history = history[: len(history) - history[::-1].index(restored)] if restored in history else [restored]
    earlier = [v for v in history[:-1] if v not in (restored, withdrawn)]
    new_previous = earlier[-1] if earlier else None
    who, at = user or current_user(), _now()
    client.set_registered_model_alias(name, CHAMPION, restored)
    if new_previous:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, new_previous)
    else:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    _set_history(client, name, history)
    change = AliasChange(
        action="rollback",
        model_name=name,
        champion_version=restored,
        replaced_version=withdrawn,
        previous_champion_version=new_previous,
        user=who,
        reason=reason,
        forced=False,
        at=at,
        run_id="",
        reference_rows_added=added,
        validation_status=dict(previous.tags or {}).get("validation_status", "missing"),
    )
    run_id = _record_run(change, settings)
    for key, value in {"rolled_back_at": at, "rolled_back_by": who, "rollback_reason": reason, "rollback_run_id": run_id}.items():
        client.set_model_version_tag(name, withdrawn, key, value)
    for key, value in {"restored_at": at, "restored_by": who, "restore_reason": reason}.items():
        client.set_model_version_tag(name, restored, key, value)
    return AliasChange(**{**asdict(change), "run_id": run_id, "reference_rows_added": added})


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "AliasChange",
    "LoadedModel",
    "ModelInputs",
    "Rule",
    "SignatureMismatchError",
    "ValidationReport",
    "check_signature",
    "ensure_feature_reference",
    "load_model",
    "open_registry",
    "promote",
    "reference_from_artifact",
    "require_champion",
    "rollback",
    "validate",
    "validation_rules",
    "version_by_alias",
]
