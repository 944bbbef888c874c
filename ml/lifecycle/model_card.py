"""``ml model-card --version N``: the documentation of one model version, SR 11-7 style.

One self-contained HTML page (charts are inline SVG; no script, style sheet or font is
fetched), written to disk, logged as the artifact ``model_card/model_card.html`` of the version's
training run, linked from the version's description and recorded in the version's tags
``model_card`` (the artifact URI) and ``model_card_sha256``. ``ml promote`` refuses a version
without it unless ``--force`` (:func:`card_blocker`).

Evidence comes from where it was recorded, not retyped: the run's params and metrics
(windows, counts, hyperparameters), the version's tags (lineage, validation, promotion), the
``validation.json`` and ``feature_reference.json`` artifacts, the registered model's
``champion_history``, the dbt manifest and the gold model's column docs (ml/feature_docs.py).
The test window is re-scored from the warehouse for the curves, Card Precision@k, the fraud
scenarios, calibration and stability (PSI against the training reference); sections whose
evidence is missing say so. Rendering (charts, template) is in ml/model_card_render.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.lifecycle import data, metrics, reference, registry
from ml.lifecycle.loaded_model import load_model
from ml.lifecycle.validate import VALIDATION_ARTIFACT
from ml.platform.errors import FraudopsError, first_line
from ml.platform.feature_docs import feature_docs
from ml.platform.mlflow_store import quiet_mlflow
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings

CARD_ARTIFACT_DIR = "model_card"
CARD_FILE = "model_card.html"
CARD_TAG = "model_card"
CARD_MARKER = "<!-- ml model-card -->"
SCENARIOS = {1: "large amount", 2: "compromised terminal", 3: "compromised card", 4: "card testing"}


@dataclass
class CardData:
    """Everything the card shows (``notes`` explain missing sections)."""

    model_name: str
    version: str
    generated_at: str
    version_info: dict[str, Any]
    params: dict[str, str]
    run_metrics: dict[str, float]
    hyperparameters: dict[str, str]
    features: list[Any]
    importance: pd.DataFrame | None
    validation: dict[str, Any] | None
    approvals: list[dict[str, str]]
    signature: dict[str, Any]
    dependencies: dict[str, str]
    manifest: dict[str, str]
    settings: Settings
    evaluation: dict[str, Any] = field(default_factory=dict)
    prequential: dict[str, Any] | None = None
    notes: dict[str, str] = field(default_factory=dict)


def card_blocker(version: Any) -> str | None:
    """Why ``version`` (an MLflow ModelVersion) may not be promoted without --force: no card."""
    if dict(version.tags or {}).get(CARD_TAG):
        return None
    return f"{version.name} v{version.version} has no model card; run ml model-card --version {version.version}"


def _load_text(uri: str) -> str | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_text(uri)
    except (MlflowException, OSError):
        return None


def _manifest(rt: Runtime) -> dict[str, str]:
    settings = rt.settings
    path = rt.dbt_target_path / "manifest.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    meta = doc.get("metadata", {})
    table = settings.model.feature_table.split(".")[-1]
    node = next(
        (
            n
            for k, n in doc.get("nodes", {}).items()
            if k.startswith("model.") and k.endswith(f".{table}")
        ),
        {},
    )
    return {
        "path": str(path),
        "dbt_version": str(meta.get("dbt_version", "")),
        "generated_at": str(meta.get("generated_at", "")),
        "invocation_id": str(meta.get("invocation_id", "")),
        "feature_model": str(node.get("unique_id", "")),
        "feature_model_checksum": str(node.get("checksum", {}).get("checksum", "")),
        "contract_enforced": str(node.get("config", {}).get("contract", {}).get("enforced", "")),
    }


def _approvals(client: Any, name: str) -> list[dict[str, str]]:
    history = registry.history(client, name)
    rows = []
    for number in history:
        try:
            tags = dict(client.get_model_version(name, number).tags or {})
        except Exception:
            tags = {}
        rows.append(
            {
                "version": number,
                **{
                    k: tags.get(k, "")
                    for k in ("validation_status", "validated_by", "validated_at")
                },
                **{
                    k: tags.get(k, "")
                    for k in ("promoted_at", "promoted_by", "promotion_reason", "promotion_forced")
                },
            }
        )
    return rows


def _prequential(
    client: Any, experiment_id: str, candidate: str, hyperparameters: dict[str, str]
) -> dict[str, Any] | None:
    """The latest ``ml evaluate`` run that evaluated this candidate with the same
    hyperparameters (prequential protocol), or ``None``."""
    runs = client.search_runs(
        [experiment_id],
        "tags.`fraudops.command` = 'evaluate'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    for run in runs:
        params = run.data.params
        same = all(params.get(f"model.{candidate}.{k}") == v for k, v in hyperparameters.items())
        if hyperparameters and same:
            prefix = f"{candidate}."
            return {
                "run_id": run.info.run_id,
                "folds": params.get("folds", "?"),
                "last_test_end": params.get("last_test_end", "?"),
                "metrics": {
                    k.removeprefix(prefix): v
                    for k, v in sorted(run.data.metrics.items())
                    if k.startswith(prefix)
                },
            }
    return None


def _model_files(name: str, version: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Signature (inputs, outputs) and dependency files of the logged model."""
    import mlflow
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="fraudops-card-") as tmp, quiet_mlflow():
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=registry.model_uri(name, version), dst_path=tmp
            )
        )
        meta = Model.load(str(local))
        files = {
            f: (local / f).read_text()
            for f in ("requirements.txt", "python_env.yaml")
            if (local / f).exists()
        }
    sig = meta.signature
    signature = {
        "inputs": [(s.name, str(getattr(s.type, "name", s.type))) for s in sig.inputs.inputs]
        if sig
        else [],
        "outputs": str(sig.outputs) if sig and sig.outputs else "",
        "flavors": ", ".join(meta.flavors),
        "predict_fn": str(meta.flavors.get("python_function", {}).get("predict_fn", "")),
    }
    return signature, files


def collect(rt: Runtime, version: str) -> CardData:
    """Gather the evidence of ``version`` of ``settings.model.name`` (see the module docstring)."""
    settings = rt.settings
    name = settings.model.name
    client = rt.registry()
    mv = registry.get_version(client, name, version)
    run = client.get_run(mv.run_id)
    parent_id = run.data.tags.get("mlflow.parentRunId")
    parent = client.get_run(parent_id) if parent_id else run
    notes: dict[str, str] = {}
    importance_csv = _load_text(f"runs:/{mv.run_id}/feature_importance.csv")
    importance = pd.read_csv(pd.io.common.StringIO(importance_csv)) if importance_csv else None
    if importance is None:
        notes["importance"] = "no feature_importance.csv artifact on the training run"
    validation = None
    validation_run = dict(mv.tags or {}).get("validation_run_id")
    if validation_run:
        text = _load_text(f"runs:/{validation_run}/{VALIDATION_ARTIFACT}")
        validation = json.loads(text) if text else None
    if validation is None:
        notes["validation"] = (
            f"v{version} has not been validated (ml validate): no {VALIDATION_ARTIFACT}"
        )
    signature, dependencies = _model_files(name, str(version))
    card = CardData(
        model_name=name,
        version=str(version),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        version_info={
            "run_id": mv.run_id,
            "parent_run_id": parent.info.run_id,
            "source": mv.source,
            "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(
                timespec="seconds"
            ),
            "aliases": ", ".join(mv.aliases or []) or "none",
            "tags": dict(mv.tags or {}),
        },
        params=dict(parent.data.params),
        run_metrics={
            **dict(parent.data.metrics),
            **{f"candidate.{k}": v for k, v in run.data.metrics.items()},
        },
        hyperparameters={
            k.removeprefix("model."): v
            for k, v in run.data.params.items()
            if k.startswith("model.")
        },
        features=feature_docs(settings.dbt.project_dir, [s[0] for s in signature["inputs"]]),
        importance=importance,
        validation=validation,
        approvals=_approvals(client, name),
        signature=signature,
        dependencies=dependencies,
        manifest=_manifest(rt),
        settings=settings,
        notes=notes,
    )
    card.prequential = _prequential(
        client,
        run.info.experiment_id,
        dict(mv.tags or {}).get("candidate", ""),
        card.hyperparameters,
    )
    try:
        card.evaluation = evaluate(rt, card)
    except (FraudopsError, ValueError, KeyError) as exc:
        card.notes["evaluation"] = f"the test window could not be re-scored: {first_line(exc)}"
    return card


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _stability(test: pd.DataFrame, run_id: str, features: list[str]) -> pd.DataFrame | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        doc = mlflow.artifacts.load_dict(f"runs:/{run_id}/{reference.ARTIFACT_FILE}")
        ref = reference.reference_from_artifact(doc["features"])
    except (MlflowException, OSError, KeyError, ValueError):
        return None
    rows = []
    for feature in features:
        bins = ref.bins.loc[ref.bins["feature"] == feature].sort_values("bin_index")
        if bins.empty or feature not in test:
            continue
        index = reference.assign_bins(
            test[feature].to_numpy(dtype="float64"), bins["bin_upper"].to_numpy()
        )
        actual = np.bincount(index, minlength=len(bins))[: len(bins)] / max(len(test), 1)
        rows.append({"feature": feature, "psi": _psi(bins["expected_fraction"].to_numpy(), actual)})
    return pd.DataFrame(rows).sort_values("psi", ascending=False).reset_index(drop=True)


def evaluate(rt: Runtime, card: CardData) -> dict[str, Any]:
    """Re-score the version's test window (its run's windows) for curves, Card Precision@k,
    scenarios, calibration and stability."""
    settings = rt.settings
    p = card.params
    windows = data.Windows(
        *(
            dt.date.fromisoformat(p[k])
            for k in ("train_start", "train_end", "test_start", "test_end")
        )
    )
    table = p.get("feature_table", settings.model.feature_table)
    with rt.warehouse(read_only=True) as wh:
        test = data.load_test_set(wh, settings, windows)
        if "tx_fraud_scenario" in wh.columns(table):
            scenarios = wh.read(
                table,
                ["transaction_id", "tx_fraud_scenario"],
                "tx_date",
                windows.test_start,
                windows.test_end,
            )
            test = test.merge(scenarios, on="transaction_id", how="left")
    model = load_model(card.model_name, card.version)
    scores = model.scores(test, settings.scoring.n_threads)
    label = settings.model.label
    labels = test[label].to_numpy()
    threshold = float(p.get("alert_threshold", settings.model.alert_threshold))
    k = int(p.get("top_k_cards", settings.model.top_k_cards))
    result: dict[str, Any] = {
        "windows": windows,
        "scores": scores,
        "labels": labels,
        "threshold": threshold,
        "k": k,
        "metrics": metrics.compute_metrics(
            scores, None, test, threshold=threshold, top_k=k, label_column=label
        ),
        "stability": _stability(test, card.version_info["run_id"], model.columns),
    }
    if "tx_fraud_scenario" in test:
        frauds = test.assign(score=scores, alert=scores >= threshold).loc[labels == 1]
        result["scenarios"] = (
            frauds.groupby("tx_fraud_scenario")
            .agg(
                frauds=("score", "size"),
                caught_at_threshold=("alert", "mean"),
                median_score=("score", "median"),
            )
            .reset_index()
            .assign(scenario=lambda f: f["tx_fraud_scenario"].map(SCENARIOS).fillna("other"))
        )
    bins = pd.qcut(pd.Series(scores).rank(method="first"), 10, labels=False)
    result["calibration"] = (
        pd.DataFrame({"bin": bins, "score": scores, "label": labels})
        .groupby("bin")
        .agg(mean_score=("score", "mean"), fraud_rate=("label", "mean"), rows=("label", "size"))
        .reset_index()
    )
    result["brier"] = float(np.mean((scores - labels) ** 2))
    cal = result["calibration"]
    result["ece"] = float(
        np.sum(cal["rows"] * (cal["mean_score"] - cal["fraud_rate"]).abs()) / max(len(scores), 1)
    )
    return result


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
