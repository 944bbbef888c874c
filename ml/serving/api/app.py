"""The scoring server's FastAPI application.

``create_app(settings, build)``: ``build()`` (load the champion, bootstrap the online state)
runs in a background thread when the app starts, so the port answers at once: ``/ping`` is 200,
``/health`` and the scoring routes 503 until the service is ready. A failed build is reported by
``/health`` and passed to ``on_failure`` (``ml serve`` then stops). Errors are JSON
``{"error_code", "message"}``; a request error never stops the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ml.platform.settings import Settings
from ml.serving.api import datarobot, mlflow_protocol, reports, status
from ml.serving.api.common import ServingState, error_response
from ml.serving.contract import RequestError
from ml.serving.service import ScoringService

log = logging.getLogger("ml.serving")

#: The protocols the app serves, one router each.
ROUTERS = (status.router, mlflow_protocol.router, reports.router)


def create_app(
    settings: Settings,
    build: Callable[[], ScoringService],
    on_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app; ``build`` makes the service (in a thread at start-up), closed at shutdown."""
    state = ServingState(settings)

    def build_in_background() -> None:
        try:
            state.service = build()
        except Exception as exc:
            state.error = f"{type(exc).__name__}: {exc}"
            log.error("the scoring service failed to start: %s", exc)
            if on_failure is not None:
                on_failure(state.error)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=build_in_background, name="serving-build", daemon=True)
        thread.start()
        try:
            yield
        finally:
            thread.join(timeout=60)
            if state.service is not None:
                state.service.close()

    app = FastAPI(
        title="fraudops scoring server",
        description="Real-time card-fraud scores: raw transactions in, champion scores out.",
        version="1",
        lifespan=lifespan,
    )
    app.state.serving = state
    for router in ROUTERS:
        app.include_router(router)
    # DataRobot's Prediction API and actuals for the configured deployment ids (settings.datarobot)
    app.include_router(datarobot.router(state, settings))
    add_error_handlers(app)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error_code", "message"}``."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc, getattr(exc, "request_id", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return error_response(RequestError(422, "INVALID_PARAMETER_VALUE", message))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
        return error_response(RequestError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return error_response(RequestError(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"))
