"""``ml score``: score, with ``models:/<name>@champion``, every gold transaction it has not scored.

* incremental and idempotent: only the transactions with no row for the champion's version in
  ``scoring.predictions`` are read (an anti-join pushed down to the warehouse), and they are
  written with ``insert_new`` on (``transaction_id``, ``model_version``), so a rerun adds nothing;
* bounded and resumable: the rows are read, scored and written a chunk of whole days at a time
  (``scoring.chunk_rows`` rows at most, unless one day has more), each chunk one warehouse write
  (one transaction): a failure leaves the chunks written before it, whole days, and a rerun scores
  the rest. ``chunk_rows: null`` reads everything at once and writes it in one transaction;
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
    ROLL_BACK,
    LoadedModel,
    ModelInputs,
    check_frame_types,
    check_signature,
    load_model,
)
from ml.platform.errors import ConfigError
from ml.platform.runtime import Runtime
from ml.platform.settings import Settings
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
    champion and append them to ``scoring.predictions``, a chunk of whole days per transaction."""
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
        chunks: list[tuple[dt.date | None, dt.date | None]] = []
        model_inputs: list[ModelInputs] = []

        def read_inputs(
            inputs: ModelInputs, first: dt.date | None, last: dt.date | None
        ) -> tuple[pd.DataFrame, pd.DataFrame]:
            frame = wh.read_unmatched(
                table,
                [ID_COLUMN, *inputs.columns],
                key=ID_COLUMN,
                other=predictions_table,
                other_where={"model_version": version},
                date_column=DATE_COLUMN,
                start=first,
                end=last,
            )
            check_frame_types(inputs, table, frame)
            return frame, data.feature_matrix(frame, inputs.columns)

        def start_reading(inputs: ModelInputs) -> None:
            # once the signature is known and fits the table, read (and build the float64 input
            # matrix) while the model deserialises: the reading thread runs while the main one
            # imports scikit-learn
            check_signature(inputs, table, table_columns)
            model_inputs.append(inputs)
            chunks.extend(_read_plan(wh, settings, table, version, start, end))
            reading.append(background.submit(read_inputs, inputs, *chunks[0]))

        model = load_model(
            name, version, overlap=start_reading, if_damaged=f"nothing was scored; {ROLL_BACK}"
        )
        seconds["registry"] = time.perf_counter() - clock
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows_read = added = explained = alerts = 0
        for phase in ("read", "predict", "explain", "write"):
            seconds[phase] = 0.0
        warming = None
        for index, chunk in enumerate(chunks):
            tick = time.perf_counter()
            # the first chunk was read while the model loaded: what is left of it
            frame, matrix = (
                reading[0].result() if index == 0 else read_inputs(model_inputs[0], *chunk)
            )
            seconds["read"] += time.perf_counter() - tick
            if warming is None and len(frame):
                # the tree explainer's import (shap, ~1 s) runs while the model predicts
                warming = background.submit(explain.warm_up, model)

            tick = time.perf_counter()
            scores = model.predict_matrix(matrix, settings.scoring.n_threads)
            seconds["predict"] += time.perf_counter() - tick

            if len(frame):
                tick = time.perf_counter()
                warming.result()
                ids = frame[ID_COLUMN].to_numpy()
                rows = predictions_frame(
                    ids, scores, model, settings.model.alert_threshold, scored_at
                )
                reasons = explain.explanations_frame(
                    explain.explainer_or_none(model),
                    ids,
                    matrix,
                    rows["is_alert"].to_numpy(),
                    model.name,
                    model.version,
                    scored_at,
                )
                seconds["explain"] += time.perf_counter() - tick
                tick = time.perf_counter()
                # one transaction on DuckDB; elsewhere the predictions (what a rerun skips) go last
                chunk_explained, chunk_added = wh.write_many(
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
                explained += chunk_explained
                added += chunk_added
                seconds["write"] += time.perf_counter() - tick
            rows_read += len(frame)
            alerts += int((scores >= settings.model.alert_threshold).sum())
            del frame, matrix, scores  # before the next chunk is read
    seconds["total"] = time.perf_counter() - clock
    return ScoreResult(
        model_name=name,
        model_version=model.version,
        flavor=model.flavor,
        rows_read=rows_read,
        rows_added=int(added),
        alerts=alerts,
        alert_threshold=settings.model.alert_threshold,
        scored_at=scored_at,
        start=start,
        end=end,
        seconds=seconds,
        explanations_added=int(explained),
    )


def day_chunks(rows_by_day: dict[dt.date, int], chunk_rows: int) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days grouped into (first, last) chunks of at most ``chunk_rows`` rows each; a
    day with more rows than that is a chunk of its own."""
    chunks: list[tuple[dt.date, dt.date]] = []
    first = last = None
    total = 0
    for day, rows in sorted(rows_by_day.items()):
        if first is not None and total + rows > chunk_rows:
            chunks.append((first, last))
            first = None
        if first is None:
            first, total = day, 0
        last, total = day, total + rows
    if first is not None:
        chunks.append((first, last))
    return chunks


def _read_plan(
    wh, settings: Settings, table: str, version: str, start: dt.date | None, end: dt.date | None
) -> list[tuple[dt.date | None, dt.date | None]]:
    """The (first, last) tx_date of each chunk to read; one chunk of the whole range when
    ``scoring.chunk_rows`` is null or nothing is left to score."""
    if settings.scoring.chunk_rows is None:
        return [(start, end)]
    rows_by_day = wh.count_unmatched_by_day(
        table, ID_COLUMN, PREDICTIONS, {"model_version": version}, DATE_COLUMN, start, end
    )
    return day_chunks(rows_by_day, settings.scoring.chunk_rows) or [(start, end)]
