"""The model card's HTML (ml/model_card.py collects the evidence): charts as inline SVG drawn by
matplotlib (no script at all), one Jinja template, ml/lifecycle/templates/model_card.html.j2."""

from __future__ import annotations

import hashlib
import io
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.lifecycle.model_card import (
    CARD_ARTIFACT_DIR,
    CARD_FILE,
    CARD_MARKER,
    CARD_TAG,
    SCENARIOS,
    CardData,
    collect,
)
from ml.platform.errors import ModelRegistryError, first_line
from ml.platform.runtime import Runtime

#: The SR 11-7 sections, in order: (id, title).
SECTIONS = (
    ("purpose", "Purpose and intended use"),
    ("data", "Data and lineage"),
    ("features", "Features"),
    ("method", "Method and hyperparameters"),
    ("performance", "Performance on the test window"),
    ("calibration", "Calibration"),
    ("stability", "Stability"),
    ("validation", "Validation verdict and thresholds"),
    ("limitations", "Limitations and known failure modes"),
    ("monitoring", "Monitoring and retraining plan"),
    ("dependencies", "Dependencies and versions"),
    ("signature", "Input and output signature"),
    ("approvals", "Approvals (alias history)"),
)


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    try:
        fig.tight_layout()
        # no RDF metadata block (dates, namespace URLs): the same evidence draws the same chart
        fig.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue and DOCTYPE (an external DTD)


def _figure(width: float = 5.2, height: float = 4.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "path"  # glyphs as paths: no font is needed or fetched
    return plt.subplots(figsize=(width, height))


def _unit_square_svg(fig: Any, ax: Any, *, x: str, y: str, title: str, legend: str) -> str:
    """A curve chart of rates (both axes 0..1, a little headroom above 1), labelled, as SVG."""
    ax.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc=legend)
    return _svg(fig)


def curve_charts(evaluation: dict[str, Any], label: str) -> dict[str, str]:
    """PR, ROC and reliability charts of the re-scored test window (SVG markup)."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    scores, labels = evaluation["scores"], evaluation["labels"]
    charts: dict[str, str] = {}
    if len(np.unique(labels)) > 1:
        precision, recall, _ = precision_recall_curve(labels, scores)
        fig, ax = _figure()
        ax.plot(
            recall,
            precision,
            drawstyle="steps-post",
            label=f"{label} (AP {average_precision_score(labels, scores):.3f})",
        )
        ax.axhline(
            labels.mean(), color="grey", linestyle=":", label=f"fraud rate {labels.mean():.4f}"
        )
        charts["pr"] = _unit_square_svg(
            fig, ax, x="recall", y="precision", title="Precision-recall", legend="upper right"
        )
        fpr, tpr, _ = roc_curve(labels, scores)
        fig, ax = _figure()
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(labels, scores):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        charts["roc"] = _unit_square_svg(
            fig,
            ax,
            x="false positive rate",
            y="true positive rate",
            title="ROC",
            legend="lower right",
        )
    calibration = evaluation["calibration"]
    fig, ax = _figure()
    ax.plot(calibration["mean_score"], calibration["fraud_rate"], marker="o", label="score deciles")
    top = float(max(calibration["mean_score"].max(), calibration["fraud_rate"].max(), 1e-3))
    ax.plot([0, top], [0, top], color="grey", linestyle=":", label="perfect calibration")
    ax.set(xlabel="mean score", ylabel="observed fraud rate", title="Reliability (test window)")
    ax.legend(loc="upper left")
    charts["calibration"] = _svg(fig)
    return charts


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float | np.floating):
        return (
            "—"
            if not math.isfinite(value)
            else f"{value:.{digits}g}"
            if abs(value) >= 1
            else f"{value:.{digits}f}"
        )
    return str(value)


def limitations(card: CardData) -> list[str]:
    """Known failure modes: the general ones, and those the evidence shows."""
    items = [
        (
            "Trained on transactions and fraud reports of a short, recent window: patterns older than "
            f"the training window ({card.params.get('train_start', '?')}..{card.params.get('train_end', '?')}) or new fraud "
            "scenarios are not represented until retraining."
        ),
        (
            f"Labels arrive with a delay ({card.params.get('delay_days', '?')} days between training and test windows): "
            "a fresh fraud wave shows in the metrics only once reported."
        ),
        (
            "Features are point in time and built by dbt: a feature table rebuilt with other windows or delays "
            "(dbt vars) silently changes the model's inputs; the signature check only sees column names and types."
        ),
        (
            "Cards already known compromised are excluded from the test window "
            f"(rule '{card.params.get('known_compromised', '?')}'): metrics describe detection of not-yet-known cards."
        ),
    ]
    evaluation = card.evaluation
    if evaluation:
        if evaluation.get("ece", 0) > 0.05:
            items.append(
                f"Scores are not calibrated probabilities (expected calibration error {evaluation['ece']:.3f}): use "
                "them to rank, and treat the alert threshold as a tuned cut-off, not a probability."
            )
        scenarios = evaluation.get("scenarios")
        if scenarios is not None:
            for row in scenarios.itertuples():
                if row.caught_at_threshold < 0.5:
                    items.append(
                        f"Weak on scenario {int(row.tx_fraud_scenario)} ({row.scenario}): {row.caught_at_threshold:.0%} "
                        f"of its {row.frauds} test frauds score above the alert threshold."
                    )
        stability = evaluation.get("stability")
        if stability is not None and len(stability) and stability["psi"].max() >= 0.1:
            worst = stability.iloc[0]
            items.append(
                f"Feature {worst['feature']} already shifts on the test window (PSI {worst['psi']:.2f})."
            )
    return items


def render(card: CardData) -> tuple[str, int]:
    """The card's HTML and the number of sections."""
    import jinja2

    from ml.lifecycle.metrics import card_precision_key

    evaluation = card.evaluation
    charts = curve_charts(evaluation, f"v{card.version}") if evaluation else {}
    k = (
        evaluation.get("k", card.settings.model.top_k_cards)
        if evaluation
        else card.settings.model.top_k_cards
    )
    headline = [
        (
            "ROC AUC",
            evaluation.get("metrics", {}).get("roc_auc")
            if evaluation
            else card.run_metrics.get("candidate.roc_auc"),
        ),
        (
            "Average precision",
            (evaluation.get("metrics", {}) if evaluation else {}).get("average_precision"),
        ),
        (
            f"Card Precision@{k}",
            (evaluation.get("metrics", {}) if evaluation else {}).get(card_precision_key(k)),
        ),
    ]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ml.lifecycle", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["fmt"] = _fmt
    html = environment.get_template("model_card.html.j2").render(
        card=card,
        sections=SECTIONS,
        charts=charts,
        headline=headline,
        evaluation=evaluation,
        k=k,
        scenarios_known=SCENARIOS,
        limitations=limitations(card),
        importance=card.importance.to_dict("records")
        if isinstance(card.importance, pd.DataFrame)
        else [],
        stability=(
            evaluation.get("stability").to_dict("records")
            if evaluation and evaluation.get("stability") is not None
            else []
        ),
        retraining=card.settings.retraining,
    )
    return re.sub(r"\n\s*\n+", "\n", html), len(SECTIONS)


@dataclass(frozen=True)
class CardResult:
    path: Path
    artifact_uri: str | None
    sha256: str
    sections: int


def _describe(previous: str | None, link: str) -> str:
    """The version's description with the card link line first (kept by ml validate, whose
    section starts at its own marker)."""
    text = previous or ""
    lines = [line for line in text.splitlines() if CARD_MARKER not in line]
    return "\n".join([f"{CARD_MARKER} Model card: [{CARD_FILE}]({link})", *lines]).strip()


def write_model_card(
    rt: Runtime, version: str, output: Path | str | None = None, *, log: bool = True
) -> CardResult:
    """Collect, render and write the card of ``version``; log it to MLflow and link it (``log``)."""
    card = collect(rt, str(version))
    html, sections = render(card)
    path = Path(output or f"model_card_{card.model_name}_v{card.version}.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    digest = hashlib.sha256(html.encode("utf-8")).hexdigest()
    artifact_uri = None
    if log:
        client = rt.registry()
        run_id = card.version_info["run_id"]
        with tempfile.TemporaryDirectory(prefix="fraudops-card-") as tmp:
            staged = Path(tmp) / CARD_FILE
            staged.write_text(html, encoding="utf-8")
            try:
                client.log_artifact(run_id, str(staged), CARD_ARTIFACT_DIR)
            except Exception as exc:
                raise ModelRegistryError(
                    f"could not log the model card to run {run_id} ({first_line(exc)})"
                ) from None
        artifact_uri = f"runs:/{run_id}/{CARD_ARTIFACT_DIR}/{CARD_FILE}"
        mv = client.get_model_version(card.model_name, card.version)
        client.update_model_version(
            card.model_name, card.version, description=_describe(mv.description, artifact_uri)
        )
        client.set_model_version_tag(card.model_name, card.version, "model_card_sha256", digest)
        client.set_model_version_tag(card.model_name, card.version, CARD_TAG, artifact_uri)
    return CardResult(path=path, artifact_uri=artifact_uri, sha256=digest, sections=sections)
