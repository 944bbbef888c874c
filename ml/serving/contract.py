"""Request bodies of the scoring server, read and checked against the landing contract.

The online state trusts its input (ml/serving/memory.py), so the server checks every row of a
request here, before anything touches the state: a request is accepted whole or rejected whole
with one :class:`RequestError` (an HTTP status, an error code and one line saying what is wrong).

Body formats are those of the MLflow scoring server (what Databricks Model Serving accepts):
JSON with exactly one of ``dataframe_split`` (``{"columns": [...], "data": [[...]]}``),
``dataframe_records`` (a list of objects), ``inputs`` or ``instances`` (a list of objects, or
an object of columns), or ``text/csv`` with a header line.

Checks (docs/data-contract.md): the contract's columns are present and not null; ids are whole
numbers (int64); ``tx_amount`` is a finite number in [0, landing.max_tx_amount]; timestamps
are ISO 8601 (a zone or offset is converted to UTC, as the landing contract does), not before
landing.min_event_date nor more than landing.max_days_ahead_of_load days after now (UTC); a
transaction_id appears once per request.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.platform.settings import LandingSettings
from ml.serving.rows import ReportRows, TransactionRows

TRANSACTION_FIELDS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
REPORT_FIELDS = ("transaction_id", "reported_at")
FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = dt.datetime(1970, 1, 1)


class RequestError(Exception):
    """A rejected request: ``status`` (400, 413, 415, 422), ``error_code``, one-line message."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def malformed(message: str) -> RequestError:
    return RequestError(400, "MALFORMED_REQUEST", message)


def invalid(message: str) -> RequestError:
    return RequestError(422, "INVALID_PARAMETER_VALUE", message)


def read_columns(body: bytes, content_type: str | None) -> dict[str, list[Any]]:
    """The body as columns (name -> values, one per row), whatever the accepted format."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise malformed(f"the body is not valid JSON ({exc})") from None
        return _json_columns(payload)
    if media == "text/csv":
        return _csv_columns(body)
    raise RequestError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"content type {media or '(none)'!r} is not supported; send application/json "
        f"(one of {', '.join(FORMATS)}) or text/csv",
    )


def _json_columns(payload: Any) -> dict[str, list[Any]]:
    if not isinstance(payload, dict):
        raise malformed(f"the JSON body must be an object with one of {', '.join(FORMATS)}")
    given = [key for key in FORMATS if key in payload]
    if len(given) != 1:
        raise malformed(
            f"the JSON body must have exactly one of {', '.join(FORMATS)} (got "
            f"{', '.join(given) or 'none'})"
        )
    (key,) = given
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
            raise malformed('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
        columns, data = value["columns"], value.get("data")
        if not isinstance(data, list) or not all(
            isinstance(row, list) and len(row) == len(columns) for row in data
        ):
            raise malformed("dataframe_split.data must be a list of rows as long as its columns")
        if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
            raise malformed("dataframe_split.columns must be distinct column names")
        return {c: [row[i] for row in data] for i, c in enumerate(columns)}
    if key in ("inputs", "instances") and isinstance(value, dict):
        if not all(isinstance(v, list) for v in value.values()):
            raise malformed(f"{key} as an object must map each column to a list of values")
        lengths = {len(v) for v in value.values()}
        if len(lengths) > 1:
            raise malformed(f"the columns of {key} have different lengths")
        return {str(k): list(v) for k, v in value.items()}
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise malformed(f"{key} must be a list of objects (one per row)")
    names: dict[str, None] = {}
    for row in value:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in value] for name in names}


def _csv_columns(body: bytes) -> dict[str, list[Any]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("the CSV body is not UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        rows = list(reader)
    except StopIteration:
        raise malformed("the CSV body has no header line") from None
    except csv.Error as exc:
        raise malformed(f"the CSV body cannot be read ({exc})") from None
    if len(set(header)) != len(header):
        raise malformed("the CSV header repeats a column")
    if any(len(row) != len(header) for row in rows):
        raise malformed("a CSV line does not have as many fields as the header")
    return {c: [row[i] if row[i] != "" else None for row in rows] for i, c in enumerate(header)}


def _row_count(columns: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _require(columns: Mapping[str, Sequence[Any]], fields: Sequence[str], what: str) -> int:
    missing = [f for f in fields if f not in columns]
    if missing:
        raise invalid(f"{what} lack column(s) {', '.join(missing)}; required: {', '.join(fields)}")
    rows = _row_count(columns)
    if rows == 0:
        raise invalid(f"the request holds no {what}")
    return rows


def _spelled(value: Any, number: Callable[[str], int | float]) -> Any:
    """``value``, or if it is a string the ``number`` it spells (``None`` if it spells none)."""
    if not isinstance(value, str):
        return value
    try:
        return number(value.strip())
    except ValueError:
        return None


def _integers(values: Sequence[Any], column: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values):
        number = _spelled(value, int)
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise invalid(f"row {k}: {column} must be a whole number, got {value!r}")
        if not _INT64[0] <= number <= _INT64[1]:
            raise invalid(f"row {k}: {column} {number} is outside the 64-bit integer range")
        out[k] = number
    return out


def _timestamps(values: Sequence[Any], column: str, landing: LandingSettings) -> np.ndarray:
    """ISO 8601 strings as µs since 1970 of UTC wall-clock time, within the contract's range."""
    earliest = dt.datetime.combine(landing.min_event_date, dt.time())
    latest = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(
        days=landing.max_days_ahead_of_load
    )
    out = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values):
        try:
            stamp = dt.datetime.fromisoformat(value.strip())  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError):
            raise invalid(f"row {k}: {column} {value!r} is not an ISO 8601 timestamp") from None
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        if not earliest <= stamp <= latest:
            raise invalid(
                f"row {k}: {column} {value} is outside the contract's range "
                f"({earliest:%Y-%m-%d} .. now + {landing.max_days_ahead_of_load} day(s))"
            )
        out[k] = (stamp - _EPOCH) // dt.timedelta(microseconds=1)
    return out


def _amounts(values: Sequence[Any], landing: LandingSettings) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for k, value in enumerate(values):
        number = _spelled(value, float)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise invalid(f"row {k}: tx_amount must be a number, got {value!r}")
        if not (math.isfinite(number) and 0 <= number <= landing.max_tx_amount):
            raise invalid(
                f"row {k}: tx_amount {value!r} is outside [0, {landing.max_tx_amount:g}] "
                "(landing contract)"
            )
        out[k] = number
    return out


def _unique_ids(ids: np.ndarray) -> None:
    if len(ids) > 1 and len(np.unique(ids)) != len(ids):
        values, counts = np.unique(ids, return_counts=True)
        raise invalid(f"transaction_id {int(values[counts > 1][0])} appears twice in the request")


@dataclass(frozen=True)
class RequestLimits:
    """Most rows one request may hold."""

    max_rows: int


def _check_rows(rows: int, limits: RequestLimits) -> None:
    if rows > limits.max_rows:
        raise RequestError(
            413,
            "REQUEST_TOO_LARGE",
            f"{rows} rows in one request; at most {limits.max_rows} (serving.max_rows)",
        )


def transactions_from(
    columns: Mapping[str, Sequence[Any]], landing: LandingSettings, limits: RequestLimits
) -> TransactionRows:
    """Checked transactions of a request (columns beyond the contract's are ignored)."""
    rows = _require(columns, TRANSACTION_FIELDS, "transactions")
    _check_rows(rows, limits)
    ids = _integers(columns["transaction_id"], "transaction_id")
    _unique_ids(ids)
    return TransactionRows(
        transaction_id=ids,
        tx_us=_timestamps(columns["tx_datetime"], "tx_datetime", landing),
        customer_id=_integers(columns["customer_id"], "customer_id"),
        terminal_id=_integers(columns["terminal_id"], "terminal_id"),
        tx_amount=_amounts(columns["tx_amount"], landing),
    )


def reports_from(
    columns: Mapping[str, Sequence[Any]], landing: LandingSettings, limits: RequestLimits
) -> ReportRows:
    """Checked fraud reports of a request (fraud-reports contract: transaction_id,
    reported_at; other columns such as fraud_scenario are ignored)."""
    rows = _require(columns, REPORT_FIELDS, "fraud reports")
    _check_rows(rows, limits)
    return ReportRows(
        transaction_id=_integers(columns["transaction_id"], "transaction_id"),
        reported_us=_timestamps(columns["reported_at"], "reported_at", landing),
    )
