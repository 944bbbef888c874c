"""``ml score``: score, with ``models:/<name>@champion``, every gold transaction it has not scored.

* incremental and idempotent: only the transactions with no row for the champion's version in
  ``scoring.predictions`` are read (an anti-join pushed down to the warehouse), and they are
  written with ``insert_new`` on (``transaction_id``, ``model_version``), so a rerun adds nothing;
* atomic: all rows of a run are one warehouse write (one transaction); a failure leaves none;
* fast: only ``transaction_id`` and the model's input columns are read, and the model scores the
  whole frame at once (no per-row Python); bench/bench_score.py measures it;
* safe: the champion's signature is checked against the feature table before anything is read;
* explained: the top 3 reasons of every alert (ml/explain.py) go to
  ``scoring.prediction_explanations`` in the same warehouse transaction as the predictions.

Rows written (docs/architecture.md): ``transaction_id, score, is_alert, model_name,
model_version, scored_at`` — ``is_alert`` is ``score >= model.alert_threshold`` and
``scored_at`` is the same UTC instant for every row of a run.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.lifecycle import data, explain, registry
from ml.lifecycle.loaded_model import (
    LoadedModel,
    ModelInputs,
    check_frame_types,
    check_signature,
    load_model,
)
from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime
from ml.platform.tables import (
    DATE_COLUMN,
    PREDICTION_COLUMNS,
    PREDICTION_EXPLANATIONS,
    PREDICTION_KEYS,
    PREDICTIONS,
)

ID_COLUMN = "transaction_id"


@dataclass(frozen=True)
class ScoreResult:
    """What ``ml score`` did; ``seconds`` per phase (registry, read, predict, write, total)."""

    model_name: str
    model_version: str
    flavor: str
    rows_read: int
    rows_added: int
    alerts: int
    alert_threshold: float
    scored_at: dt.datetime
    start: dt.date | None
    end: dt.date | None
    seconds: dict[str, float] = field(default_factory=dict)
    explanations_added: int = 0  # reason rows (top 3 per alert) in scoring.prediction_explanations

    @property
    def rows_per_second(self) -> float:
        total = self.seconds.get("total", 0.0)
        return self.rows_read / total if total else float("nan")


def predictions_frame(
    transaction_ids: np.ndarray,
    scores: np.ndarray,
    model: LoadedModel,
    threshold: float,
    scored_at: dt.datetime,
) -> pd.DataFrame:
    """The ``scoring.predictions`` rows of one run (vectorised; one ``scored_at`` for all)."""
    n = len(scores)
    return pd.DataFrame(
        {
            "transaction_id": np.asarray(transaction_ids, dtype="int64"),
            "score": np.asarray(scores, dtype="float64"),
            "is_alert": np.asarray(scores, dtype="float64") >= threshold,
            "model_name": model.name,
            "model_version": model.version,
            "scored_at": np.full(n, np.datetime64(scored_at, "us")),
        },
        columns=list(PREDICTION_COLUMNS),
    )


def score(rt: Runtime, *, start: dt.date | None = None, end: dt.date | None = None) -> ScoreResult:
    """Score the not-yet-scored transactions (``start <= tx_date <= end`` if given) with the
    champion and append them to ``scoring.predictions`` in one transaction."""
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    settings = rt.settings
    name = settings.model.name
    table = settings.model.feature_table
    predictions_table = PREDICTIONS
    if start and end and start > end:
        raise ConfigError(f"--start {start} is after --end {end}")

    client = rt.registry()
    champion = registry.require_champion(client, name)
    version = str(champion.version)

    with rt.warehouse() as wh, ThreadPoolExecutor(1) as background:
        wh.require(table, "run dbt build to create it")
        table_columns = wh.columns(table)
        reading: list[Future[tuple[pd.DataFrame, pd.DataFrame]]] = []

        def read_inputs(inputs: ModelInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
            frame = wh.read_unmatched(
                table,
                [ID_COLUMN, *inputs.columns],
                key=ID_COLUMN,
                other=predictions_table,
                other_where={"model_version": version},
                date_column=DATE_COLUMN,
                start=start,
                end=end,
            )
            check_frame_types(inputs, table, frame)
            return frame, data.feature_matrix(frame, inputs.columns)

        def start_reading(inputs: ModelInputs) -> None:
            # once the signature is known and fits the table, read (and build the float64 input
            # matrix) while the model deserialises: the reading thread runs while the main one
            # imports scikit-learn
            check_signature(inputs, table, table_columns)
            reading.append(background.submit(read_inputs, inputs))

        model = load_model(name, version, overlap=start_reading)
        seconds["registry"] = time.perf_counter() - clock
        tick = time.perf_counter()
        frame, matrix = reading[0].result()
        seconds["read"] = time.perf_counter() - tick  # what is left of it after loading the model
        # the tree explainer's import (shap, ~1 s) runs while the model predicts
        warming = background.submit(explain.warm_up, model) if len(frame) else None

        tick = time.perf_counter()
        scores = model.predict_matrix(matrix, settings.scoring.n_threads)
        seconds["predict"] = time.perf_counter() - tick
        if warming is not None:
            warming.result()

        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        tick = time.perf_counter()
        added = explained = 0
        if len(frame):
            ids = frame[ID_COLUMN].to_numpy()
            rows = predictions_frame(ids, scores, model, settings.model.alert_threshold, scored_at)
            reasons = explain.explanations_frame(
                explain.explainer_or_none(model),
                ids,
                matrix,
                rows["is_alert"].to_numpy(),
                model.name,
                model.version,
                scored_at,
            )
            seconds["explain"] = time.perf_counter() - tick
            # one transaction on DuckDB; elsewhere the predictions (what a rerun skips) go last
            explained, added = wh.write_many(
                [
                    (
                        reasons,
                        PREDICTION_EXPLANATIONS,
                        "insert_new",
                        list(explain.EXPLANATION_KEYS),
                    ),
                    (rows, predictions_table, "insert_new", list(PREDICTION_KEYS)),
                ]
            )
        seconds["write"] = time.perf_counter() - tick - seconds.get("explain", 0.0)
    seconds["total"] = time.perf_counter() - clock
    return ScoreResult(
        model_name=name,
        model_version=model.version,
        flavor=model.flavor,
        rows_read=len(frame),
        rows_added=int(added),
        alerts=int((scores >= settings.model.alert_threshold).sum()),
        alert_threshold=settings.model.alert_threshold,
        scored_at=scored_at,
        start=start,
        end=end,
        seconds=seconds,
        explanations_added=int(explained),
    )
