"""``GET /ping`` (the process answers), ``/health`` (200 once model and state are ready),
``/version`` (model name, version, alias, run, state size and as-of)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ml.serving.api.common import ready_service, serving_state

router = APIRouter(tags=["status"])


@router.get("/ping", response_class=PlainTextResponse)
def ping() -> str:
    """Liveness: the process answers (MLflow's scoring server has the same route)."""
    return "\n"


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """Readiness: 200 once the champion is loaded and the online state bootstrapped."""
    state = serving_state(request)
    if state.service is None:
        return JSONResponse(
            {"status": "failed" if state.error else "loading", "message": state.error},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get("/version")
def version(request: Request) -> dict[str, Any]:
    """The served model (name, version, alias, run id) and the online state (size, as-of)."""
    return ready_service(request).version()
