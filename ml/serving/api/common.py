"""What every router shares: the service of the running app, request bodies, errors."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse

from ml.serving.contract import RequestError, RequestLimits

if TYPE_CHECKING:
    from ml.platform.settings import Settings
    from ml.serving.service import ScoringService

REQUEST_ID_HEADER = "x-request-id"


@dataclass
class ServingState:
    """What the app holds: the settings, and the service once it is built."""

    settings: Settings
    service: ScoringService | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def limits(self) -> RequestLimits:
        return RequestLimits(max_rows=self.settings.serving.max_rows)


def serving_state(request: Request) -> ServingState:
    return request.app.state.serving


def ready_service(request: Request) -> ScoringService:
    """The service, or a 503 while the model and state are loading."""
    state = serving_state(request)
    if state.service is None:
        message = state.error or "the model and the online state are still loading"
        raise RequestError(503, "NOT_READY", message)
    return state.service


def request_id(request: Request) -> str:
    return request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 beyond, announced or not)."""
    declared = request.headers.get("content-length")
    too_large = RequestError(
        413, "REQUEST_TOO_LARGE", f"the body exceeds {limit} bytes (serving.max_body_bytes)"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(error: RequestError, rid: str | None = None) -> JSONResponse:
    headers = {REQUEST_ID_HEADER: rid} if rid else None
    return JSONResponse(
        {"error_code": error.error_code, "message": error.message},
        status_code=error.status,
        headers=headers,
    )
