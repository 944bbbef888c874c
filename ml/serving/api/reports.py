"""``POST /fraud-reports``: fraud reports (the fraud-reports contract's ``transaction_id``,
``reported_at``) arriving after their transactions, in the formats of ``/invocations``. A report
counts in a feature only from its ``reported_at`` on, as in gold.transaction_features."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ml.serving.api.common import (
    REQUEST_ID_HEADER,
    read_body,
    ready_service,
    request_id,
    serving_state,
)
from ml.serving.api.mlflow_protocol import request_body, row_schema
from ml.serving.contract import REPORT_FIELDS, read_columns, reports_from

router = APIRouter(tags=["labels"])

REPORT = row_schema(REPORT_FIELDS, optional=("fraud_scenario",))


@router.post(
    "/fraud-reports",
    openapi_extra={"requestBody": request_body(REPORT)},
    responses={400: {}, 413: {}, 415: {}, 422: {}, 503: {}},
)
async def fraud_reports(request: Request) -> JSONResponse:
    """Record fraud reports in the online state; how many were received and new."""
    service = ready_service(request)
    rid = request_id(request)
    state = serving_state(request)
    settings = state.settings
    body = await read_body(request, settings.serving.max_body_bytes)
    reports = reports_from(
        read_columns(body, request.headers.get("content-type")), settings.landing, state.limits
    )
    new = service.record_reports(reports, rid)
    return JSONResponse({"received": len(reports), "new": new}, headers={REQUEST_ID_HEADER: rid})
