"""DataRobot-compatible routes: an existing DataRobot client changes only its base URL.

* ``POST /predApi/v1.0/deployments/{deployment_id}/predictions`` (dedicated prediction server)
  and ``POST /api/v2/deployments/{deployment_id}/predictions`` (serverless);
* ``POST /api/v2/deployments/{deployment_id}/actuals/fromJSON/``: an actual of 1 lands as a
  fraud report (the landing contract, ml/world/landing.py) and updates the online state.

Mount with ``app.include_router(datarobot_router(services, settings))``: ``services`` maps each
deployment id of ``settings.datarobot.deployments`` to a :class:`ScoringService`
(ml/serving/scoring.py); a live mapping lets the server swap a champion under it. Errors are
``{"message": ...}`` with DataRobot's status codes; wire formats: ml/serving/datarobot_format.py.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping

import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ml.platform.settings import Settings
from ml.serving.datarobot_format import (
    RequestError,
    csv_response,
    json_response,
    parse_actuals,
    parse_options,
    parse_rows,
    read_body,
)
from ml.serving.scoring import ScoringService
from ml.world.landing import land_fraud_reports

PREDICTION_PATHS = (
    "/predApi/v1.0/deployments/{deployment_id}/predictions",
    "/api/v2/deployments/{deployment_id}/predictions",
)
ACTUALS_PATH = "/api/v2/deployments/{deployment_id}/actuals/fromJSON/"
#: DataRobot's Python client checks GET <endpoint>/version/ when it is configured; the API
#: version its 3.x releases expect (datarobot.client._get_expected_server_version)
VERSION_PATH = "/api/v2/version/"
API_VERSION = (2, 49)
#: file name tag of the fraud reports landed from actuals
ACTUALS_SOURCE = "actuals"


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse({"message": exc.message}, status_code=exc.status)


def datarobot_router(services: Mapping[str, ScoringService], settings: Settings) -> APIRouter:
    """The DataRobot routes over ``services`` (deployment id -> service)."""
    config = settings.datarobot
    target = settings.model.label
    landing_root = settings.landing.root
    router = APIRouter(tags=["datarobot"])

    def authorise(request: Request) -> None:
        if not config.token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # DataRobot accepts Bearer, and the deprecated Token (its Python client's default)
        if scheme.lower() not in ("bearer", "token") or not hmac.compare_digest(
            given.strip().encode(), config.token.encode()
        ):
            raise RequestError(
                401, "missing or invalid API token: send Authorization: Bearer <token>"
            )

    def service_of(deployment_id: str) -> ScoringService:
        service = services.get(deployment_id)
        if service is None:
            raise RequestError(404, f"deployment {deployment_id} not found")
        return service

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_request_bytes:
            raise RequestError(
                413,
                f"request body exceeds the {config.max_request_bytes / 2**20:g} MB limit of "
                "real-time predictions; split the data into smaller requests or use batch scoring",
            )
        return read_body(
            await request.body(), request.headers.get("content-encoding"), config.max_request_bytes
        )

    async def predictions(deployment_id: str, request: Request) -> Response:
        started = time.perf_counter()
        try:
            authorise(request)
            service = service_of(deployment_id)
            transactions, sent = parse_rows(
                await body_of(request), request.headers.get("content-type")
            )
            options = parse_options(list(request.query_params.multi_items()))
            options.passthrough_columns(sent)  # 400 before scoring (and recording) anything
            scored = service.score(transactions, explain=options.max_explanations)
            accept = request.headers.get("accept", "application/json").lower()
            if "text/csv" in accept:
                body = csv_response(scored, service.threshold, options, sent, target)
                response: Response = Response(body, media_type="text/csv")
            else:
                response = JSONResponse(json_response(scored, service.threshold, options, sent))
        except RequestError as exc:
            return _error(exc)
        response.headers["X-DataRobot-Execution-Time"] = str(
            round((time.perf_counter() - started) * 1000)
        )
        response.headers["X-DataRobot-Model-Cache-Hit"] = "true"  # the model stays loaded
        response.headers["X-DataRobot-Model-Id"] = f"{service.model_name}/{service.model_version}"
        return response

    async def actuals(deployment_id: str, request: Request) -> Response:
        try:
            authorise(request)
            service = service_of(deployment_id)
            rows = parse_actuals(
                await body_of(request),
                config.max_actuals_rows,
                pd.Timestamp.now(tz="UTC").tz_localize(None),
            )
        except RequestError as exc:
            return _error(exc)
        frauds = rows.loc[rows["actual"] == 1].drop_duplicates("transaction_id")
        reports = pd.DataFrame(
            {
                "transaction_id": frauds["transaction_id"].to_numpy("int64"),
                "reported_at": frauds["timestamp"].to_numpy("datetime64[us]"),
                "fraud_scenario": 0,  # a feed without scenario codes (docs/data-contract.md)
            }
        )
        files = []
        if len(reports):
            files = land_fraud_reports(
                landing_root, pa.Table.from_pandas(reports, preserve_index=False), ACTUALS_SOURCE
            )
            service.add_fraud_reports(reports[["transaction_id", "reported_at"]])
        return JSONResponse(
            {
                "message": f"{len(rows)} actuals accepted, {len(reports)} landed as fraud reports",
                "actuals": len(rows),
                "fraudReports": len(reports),
                "files": [str(f) for f in files],
            },
            status_code=202,
        )

    async def version() -> dict[str, object]:
        major, minor = API_VERSION
        return {"major": major, "minor": minor, "versionString": f"{major}.{minor}"}

    for path in PREDICTION_PATHS:
        router.add_api_route(path, predictions, methods=["POST"], name=f"predictions {path[:8]}")
    router.add_api_route(ACTUALS_PATH, actuals, methods=["POST"], status_code=202)
    router.add_api_route(VERSION_PATH, version, methods=["GET"])
    return router


def create_app(services: Mapping[str, ScoringService], settings: Settings) -> FastAPI:
    """A bare app serving only the DataRobot routes (the tests'; ``ml serve`` mounts the router
    on its own app)."""
    app = FastAPI(title="fraudops DataRobot-compatible Prediction API")
    app.include_router(datarobot_router(services, settings))
    return app
