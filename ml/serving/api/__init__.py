"""The scoring server's HTTP layer (FastAPI): one router per protocol, assembled by ``app``.

* ``app`` — ``create_app``: the application, its start-up (model + state built in the
  background; ``/health`` is 503 until then), error responses, request-body reading;
* ``mlflow_protocol`` — ``POST /invocations``, the MLflow scoring-server protocol (Databricks
  Model Serving's): raw landing-contract transactions in, one prediction per row out;
* ``reports`` — ``POST /fraud-reports``: labels arriving later update the state;
* ``status`` — ``GET /ping``, ``/health``, ``/version``.

Another protocol (e.g. a DataRobot-compatible prediction route) is one more router module
included in ``app.ROUTERS``.
"""
