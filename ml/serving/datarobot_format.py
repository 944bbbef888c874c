"""The DataRobot Prediction API's wire formats, without a web framework: request bodies and
query parameters in, JSON and CSV response bodies out (ml/serving/datarobot.py serves them).

Layouts follow DataRobot's documentation (Prediction API reference, "Output formats" of the
batch prediction API, the same for real-time) and what its client ``datarobot-predict`` sends
and parses: a CSV body with a header row, ``Accept: text/csv``, repeated ``passthroughColumns``
or ``passthroughColumnsSet=all``, ``maxExplanations``, ``thresholdHigh``/``thresholdLow``,
and a CSV response read with ``pandas.read_csv``.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.serving.rows import TRANSACTION_COLUMNS
from ml.serving.scoring import REASONS

POSITIVE, NEGATIVE = 1, 0
#: maxExplanations above it (or 'all') means every reason the model has
MAX_EXPLANATIONS = 100


class RequestError(ValueError):
    """A request DataRobot would refuse: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- request ----------------------------------------------------------------------------------


def read_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body, gunzipped if ``Content-Encoding: gzip``; over ``limit`` bytes (either way): 413."""
    too_large = RequestError(
        413,
        f"request body exceeds the {limit / 2**20:g} MB limit of real-time predictions; "
        "split the data into smaller requests or use batch scoring (ml score)",
    )
    if len(raw) > limit:
        raise too_large
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise RequestError(400, f"unsupported Content-Encoding {encoding!r}; send gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, f"the gzip body cannot be decompressed ({exc})") from None
    if len(body) > limit:
        raise too_large
    return body


def parse_rows(body: bytes, content_type: str | None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(the transactions in the landing contract's types, every input column as sent).

    ``text/csv`` (or ``text/plain``) with a header row, or ``application/json``: an array of
    records (or ``{"data": [...]}``). Missing contract columns or unparsable values: 400."""
    media = (content_type or "text/csv").split(";")[0].strip().lower()
    try:
        if media in ("text/csv", "text/plain"):
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
        elif media == "application/json":
            records = json.loads(body or b"[]")
            if isinstance(records, Mapping):
                records = records.get("data")
            if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
                raise RequestError(400, "a JSON body must be an array of records")
            frame = pd.DataFrame.from_records(records)
        else:
            raise RequestError(
                415, f"unsupported Content-Type {media!r}; send text/csv or application/json"
            )
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, RequestError):
            raise
        raise RequestError(
            400, f"cannot read the {media} body: {str(exc).splitlines()[0]}"
        ) from None
    if frame.empty:
        raise RequestError(400, "the request has no rows to score")
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise RequestError(
            400,
            f"missing column(s) {', '.join(missing)}; rows need the landing contract's columns "
            f"{', '.join(TRANSACTION_COLUMNS)}",
        )
    sent = {c: frame[c].to_numpy() for c in frame.columns}
    try:
        transactions = pd.DataFrame(
            {
                "transaction_id": pd.to_numeric(frame["transaction_id"]).astype("int64"),
                "tx_datetime": pd.to_datetime(frame["tx_datetime"], format="ISO8601"),
                "customer_id": pd.to_numeric(frame["customer_id"]).astype("int64"),
                "terminal_id": pd.to_numeric(frame["terminal_id"]).astype("int64"),
                "tx_amount": pd.to_numeric(frame["tx_amount"]).astype("float64"),
            }
        )
    except (ValueError, TypeError) as exc:
        raise RequestError(400, f"bad value in the rows: {str(exc).splitlines()[0]}") from None
    if getattr(transactions["tx_datetime"].dtype, "tz", None) is not None:
        raise RequestError(400, "tx_datetime must be without time zone (UTC wall clock)")
    return transactions, sent


@dataclass(frozen=True)
class Options:
    """The query parameters of a prediction request."""

    max_explanations: int = 0
    threshold_high: float | None = None
    threshold_low: float | None = None
    passthrough: tuple[str, ...] | None = None  # None: none; () with all=True: every column
    passthrough_all: bool = False

    def explained(self, scores: np.ndarray) -> np.ndarray:
        """Rows whose explanations are returned: outside the (low, high) band if one is given."""
        if self.threshold_high is None and self.threshold_low is None:
            return np.ones(len(scores), dtype=bool)
        out = np.zeros(len(scores), dtype=bool)
        if self.threshold_high is not None:
            out |= scores > self.threshold_high
        if self.threshold_low is not None:
            out |= scores < self.threshold_low
        return out

    def passthrough_columns(self, sent: Mapping[str, Any]) -> list[str]:
        """The columns to pass through; one that was not sent: 400."""
        if self.passthrough_all:
            return list(sent)
        columns = list(dict.fromkeys(self.passthrough or ()))
        unknown = [c for c in columns if c not in sent]
        if unknown:
            raise RequestError(
                400, f"passthrough column(s) {', '.join(unknown)} are not in the request's data"
            )
        return columns


def parse_options(params: Sequence[tuple[str, str]]) -> Options:
    """The query parameters (repeated keys kept); a bad value: 422."""
    values: dict[str, list[str]] = {}
    for key, value in params:
        values.setdefault(key, []).append(value)

    def one(key: str) -> str | None:
        found = [v for v in values.get(key, []) if v != ""]
        if len(found) > 1:
            raise RequestError(422, f"{key} is given {len(found)} times; give it once")
        return found[0] if found else None

    def threshold(key: str) -> float | None:
        value = one(key)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not 0.0 <= number <= 1.0:
            raise RequestError(422, f"{key} must be a number between 0 and 1, got {value!r}")
        return number

    raw = one("maxExplanations")
    if raw is None:
        k = 0
    elif raw.lower() == "all":
        k = MAX_EXPLANATIONS
    else:
        try:
            k = int(raw)
        except ValueError:
            k = -1
        if k < 0:
            raise RequestError(422, f"maxExplanations must be a whole number >= 0, got {raw!r}")
    every = one("passthroughColumnsSet")
    if every is not None and every != "all":
        raise RequestError(422, f"passthroughColumnsSet accepts only 'all', got {every!r}")
    listed = tuple(values.get("passthroughColumns", []))
    if every and listed:
        raise RequestError(422, "give passthroughColumns or passthroughColumnsSet=all, not both")
    return Options(
        max_explanations=min(k, MAX_EXPLANATIONS),
        threshold_high=threshold("thresholdHigh"),
        threshold_low=threshold("thresholdLow"),
        passthrough=listed or None,
        passthrough_all=every == "all",
    )


# --- response ---------------------------------------------------------------------------------


def qualitative(strengths: Sequence[float]) -> list[str]:
    """DataRobot's ``qualitativeStrength`` of a row's reasons: + (towards fraud) or -, repeated
    1-3 times by the strength relative to the row's largest |strength| (> 2/3: 3, > 1/3: 2)."""
    top = max((abs(s) for s in strengths), default=0.0)
    out = []
    for s in strengths:
        ratio = abs(s) / top if top else 0.0
        count = 3 if ratio > 2 / 3 else 2 if ratio > 1 / 3 else 1
        out.append(("+" if s >= 0 else "-") * count)
    return out


def _python(value: Any) -> Any:
    """A JSON-serialisable scalar (numpy and pandas values made plain)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    return value


def _explanations(scored: pd.DataFrame, options: Options) -> list[list[tuple[str, float, float]]]:
    explained = options.explained(scored["score"].to_numpy())
    return [
        list(reasons)[: options.max_explanations] if keep else []
        for reasons, keep in zip(scored[REASONS], explained, strict=True)
    ]


def json_response(
    scored: pd.DataFrame, threshold: float, options: Options, sent: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """``{"data": [...]}``, one object per row in input order."""
    passthrough = options.passthrough_columns(sent)
    explanations = _explanations(scored, options) if options.max_explanations else None
    rows = []
    for i, (score, alert) in enumerate(zip(scored["score"], scored["is_alert"], strict=True)):
        row: dict[str, Any] = {
            "rowId": i,
            "prediction": POSITIVE if alert else NEGATIVE,
            "predictionThreshold": threshold,
            "predictionValues": [
                {"label": POSITIVE, "value": float(score)},
                {"label": NEGATIVE, "value": 1.0 - float(score)},
            ],
        }
        if explanations is not None:
            reasons = explanations[i]
            marks = qualitative([s for _, _, s in reasons])
            row["predictionExplanations"] = [
                {
                    "label": POSITIVE,
                    "feature": feature,
                    "featureValue": _python(value),
                    "strength": strength,
                    "qualitativeStrength": mark,
                }
                for (feature, value, strength), mark in zip(reasons, marks, strict=True)
            ]
        if passthrough:
            row["passthroughValues"] = {c: _python(sent[c][i]) for c in passthrough}
        rows.append(row)
    return {"data": rows}


def csv_response(
    scored: pd.DataFrame,
    threshold: float,
    options: Options,
    sent: Mapping[str, np.ndarray],
    target: str,
) -> str:
    """DataRobot's columnar layout: passthrough columns, ``<target>_1_PREDICTION``,
    ``<target>_0_PREDICTION``, ``<target>_PREDICTION``, ``THRESHOLD``, ``POSITIVE_CLASS``, then
    ``EXPLANATION_<i>_FEATURE_NAME/_STRENGTH/_ACTUAL_VALUE/_QUALITATIVE_STRENGTH``."""
    score = scored["score"].to_numpy(np.float64)
    columns: dict[str, Any] = {c: sent[c] for c in options.passthrough_columns(sent)}
    columns[f"{target}_{POSITIVE}_PREDICTION"] = score
    columns[f"{target}_{NEGATIVE}_PREDICTION"] = 1.0 - score
    columns[f"{target}_PREDICTION"] = np.where(scored["is_alert"], POSITIVE, NEGATIVE)
    columns["THRESHOLD"] = threshold
    columns["POSITIVE_CLASS"] = POSITIVE
    # as many explanation columns as reasons asked for and given (the model's features at most)
    k = min(options.max_explanations, max(map(len, scored[REASONS]), default=0))
    if k:
        explanations = _explanations(scored, options)
        marks = [qualitative([s for _, _, s in reasons]) for reasons in explanations]
        for i in range(k):

            def nth(part: int, row: list[Any], i: int = i) -> Any:
                return row[i][part] if i < len(row) else None

            columns[f"EXPLANATION_{i + 1}_FEATURE_NAME"] = [nth(0, r) for r in explanations]
            columns[f"EXPLANATION_{i + 1}_STRENGTH"] = [nth(2, r) for r in explanations]
            columns[f"EXPLANATION_{i + 1}_ACTUAL_VALUE"] = [nth(1, r) for r in explanations]
            columns[f"EXPLANATION_{i + 1}_QUALITATIVE_STRENGTH"] = [
                m[i] if i < len(m) else None for m in marks
            ]
    # float_format=repr-exact: %.17g round-trips every double
    return pd.DataFrame(columns).to_csv(index=False, float_format="%.17g")


# --- actuals ----------------------------------------------------------------------------------


def parse_actuals(body: bytes, max_rows: int, now: pd.Timestamp) -> pd.DataFrame:
    """``{"data": [{"associationId", "actualValue", "wasActedOn", "timestamp"}]}`` as rows of
    ``transaction_id, actual, was_acted_on, timestamp`` (UTC, no zone; default ``now``); 422."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise RequestError(400, f"the body is not JSON ({exc})") from None
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list) or not data:
        raise RequestError(
            422, 'actuals need {"data": [{"associationId": ..., "actualValue": ...}]}'
        )
    if len(data) > max_rows:
        raise RequestError(422, f"{len(data)} actuals in one request; send at most {max_rows}")
    rows = []
    for i, item in enumerate(data):
        if (
            not isinstance(item, Mapping)
            or "associationId" not in item
            or "actualValue" not in item
        ):
            raise RequestError(422, f"data[{i}] needs associationId and actualValue")
        try:
            transaction_id = int(str(item["associationId"]))
            actual = int(float(item["actualValue"]))
            stamp = item.get("timestamp")
            when = pd.Timestamp(stamp) if stamp else now
        except (TypeError, ValueError) as exc:
            raise RequestError(422, f"data[{i}]: {exc}") from None
        if actual not in (0, 1) or float(item["actualValue"]) != actual:
            raise RequestError(422, f"data[{i}]: actualValue must be 0 or 1")
        if when.tzinfo is not None:
            when = when.tz_convert("UTC").tz_localize(None)
        rows.append((transaction_id, actual, bool(item.get("wasActedOn", False)), when))
    return pd.DataFrame(rows, columns=["transaction_id", "actual", "was_acted_on", "timestamp"])
