"""``POST /invocations``: the MLflow scoring-server protocol (Databricks Model Serving's).

A row is a raw transaction in the landing contract's columns; the server computes its features
from the online state and scores them with the champion. Rows of one request are scored in time
order (each sees the earlier ones) and come back in the request's order, each as
``{"transaction_id", "score", "is_alert", "model_version"}`` (plus ``"features"`` with
``?include_features=true``), under ``{"predictions": [...]}``. A request is checked whole before
the state is touched: a bad row rejects the request and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ml.serving.api.common import (
    REQUEST_ID_HEADER,
    read_body,
    ready_service,
    request_id,
    serving_state,
)
from ml.serving.contract import (
    FORMATS,
    TRANSACTION_FIELDS,
    RequestError,
    read_columns,
    transactions_from,
)

router = APIRouter(tags=["mlflow"])

#: The JSON schema of each contract column a request row may hold (the routes' OpenAPI docs).
COLUMN_SCHEMAS = {
    "transaction_id": {"type": "integer"},
    "tx_datetime": {"type": "string", "example": "2018-09-01T12:00:00"},
    "customer_id": {"type": "integer"},
    "terminal_id": {"type": "integer"},
    "tx_amount": {"type": "number", "minimum": 0},
    "reported_at": {"type": "string", "example": "2018-09-03T08:00:00"},
    "fraud_scenario": {"type": "integer"},
}


def row_schema(required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI schema of one request row: the contract's ``required`` columns, and
    ``optional`` ones the route accepts (and ignores)."""
    return {
        "type": "object",
        "properties": {column: COLUMN_SCHEMAS[column] for column in (*required, *optional)},
        "required": list(required),
    }


TRANSACTION = row_schema(TRANSACTION_FIELDS)


def request_body(row: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a route taking ``row``s in the MLflow formats."""
    records = {"type": "array", "items": row}
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array"}},
        },
        "required": ["columns", "data"],
    }
    variants = [
        {
            "type": "object",
            "properties": {key: records if key != "dataframe_split" else split},
            "required": [key],
        }
        for key in FORMATS
    ]
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": variants}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }


@router.post(
    "/invocations",
    openapi_extra={"requestBody": request_body(TRANSACTION)},
    responses={400: {}, 413: {}, 415: {}, 422: {}, 503: {}},
)
async def invocations(request: Request, include_features: bool = False) -> JSONResponse:
    """Score raw transactions (landing contract) with the champion."""
    received = time.perf_counter()
    service = ready_service(request)
    rid = request_id(request)
    state = serving_state(request)
    settings = state.settings
    try:
        body = await read_body(request, settings.serving.max_body_bytes)
        rows = transactions_from(
            read_columns(body, request.headers.get("content-type")), settings.landing, state.limits
        )
    except RequestError as error:
        service.log_rejected(rid, error.status, error.error_code, received)
        error.request_id = rid  # type: ignore[attr-defined]
        raise
    predictions = service.score(rows, rid, received, include_features)
    return JSONResponse({"predictions": predictions}, headers={REQUEST_ID_HEADER: rid})
