# fraudops — one entry point. `make run` runs the main job end to end on the embedded default
# (DuckDB + local MLflow); `make test` runs everything CI runs. Both create .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Small dataset for CI's dbt build (the full default is ~1.75M transactions).
CI_SIM := --customers 300 --terminals 600 --days 60
export FRAUDOPS_TARGET ?= local

.PHONY: help venv run run-ci test lint sqlfluff pytest dbt-ci docs docs-serve bench clean browser mlflow-ui report serve

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --compile-bytecode: uv does not write .pyc files by default, and where PYTHONDONTWRITEBYTECODE is set
# (CI images, this VM) Python never caches them either: every `ml`/`dbt` process would recompile
# MLflow, dbt and sklearn from source (`import mlflow` 9.3 s instead of 2.8 s, measured here).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock -e '.[dev,spark,databricks]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv with everything pinned in requirements.lock

run: $(STAMP) ## simulate -> dbt build -> train -> validate -> promote -> score -> monitoring, with a summary
	$(BIN)/ml run

# The CI-size world in a scratch dir of its own (~7 frauds a day: the validation minimums are
# scaled to what such a window allows, ml/lifecycle/validate.py).
CI_RUN_ENV := FRAUDOPS_LANDING_ROOT=$(CURDIR)/.ci-run/landing FRAUDOPS_DUCKDB_PATH=$(CURDIR)/.ci-run/ci.duckdb \
	FRAUDOPS__MLFLOW__TRACKING_URI=sqlite:///$(CURDIR)/.ci-run/mlflow.db DBT_TARGET_PATH=$(CURDIR)/.ci-run/target \
	FRAUDOPS__OPERATE__REPORT=$(CURDIR)/.ci-run/fraudops-report.html
run-ci: $(STAMP) ## make run on the CI-size world (CI_SIM), under .ci-run/
	@rm -rf .ci-run && mkdir -p .ci-run
	$(CI_RUN_ENV) $(BIN)/ml simulate $(CI_SIM)
	$(CI_RUN_ENV) $(BIN)/ml run --no-simulate

mlflow-ui: $(STAMP) ## MLflow UI of the local tracking store on http://localhost:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --port 5000

report: $(STAMP) ## write reports/fraudops-report.html from the local warehouse and registry
	$(BIN)/ml report --output reports/fraudops-report.html

test: $(STAMP) browser ## lint SQL, dbt build on a small simulated dataset, pytest (what CI runs)
	$(MAKE) lint
	$(MAKE) dbt-ci
	$(MAKE) pytest

browser: ## headless Chromium (Debian package) for the report's browser test, if missing
	@test -x /usr/bin/chromium || { DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; }

lint: $(STAMP) sqlfluff ## sqlfluff (databricks dialect) + ruff (chosen rules, pyproject.toml) + ruff format
	$(BIN)/ruff check ml tests bench
	$(BIN)/ruff format --check ml tests bench

sqlfluff: $(STAMP)
	$(BIN)/sqlfluff lint models tests/dbt macros

dbt-ci: $(STAMP) ## dbt build of every model and test over a small simulated dataset in a scratch dir
	@rm -rf .ci-work && mkdir -p .ci-work
	FRAUDOPS_LANDING_ROOT=$(CURDIR)/.ci-work/landing $(BIN)/ml simulate $(CI_SIM) --landing-root $(CURDIR)/.ci-work/landing
	FRAUDOPS_LANDING_ROOT=$(CURDIR)/.ci-work/landing FRAUDOPS_DUCKDB_PATH=$(CURDIR)/.ci-work/ci.duckdb \
	  $(BIN)/dbt build --target-path .ci-work/target --log-path .ci-work/logs

# --dist loadscope: a module's tests share one worker, so a module-scoped fixture (the Spark
# conformance build, ~4-8 min) is built once instead of once per worker (measured: 616 + 559 s).
pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadscope --durations=15

docs: $(STAMP) ## dbt docs generate (lineage) for the local warehouse
	$(BIN)/dbt docs generate

docs-serve: docs ## serve the dbt docs site with lineage on http://localhost:8080
	$(BIN)/dbt docs serve --port 8080

bench: $(STAMP) ## benchmarks on the default simulated dataset (minutes)
	$(BIN)/python bench/bench_simulator.py
	$(BIN)/python bench/bench_foundation.py
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_score.py

serve: $(STAMP) ## real-time scoring on http://127.0.0.1:5000 (after make run): ml serve, Ctrl-C stops it
	$(BIN)/ml serve

clean: ## remove generated data (landing, warehouse, MLflow, dbt target); keeps .venv
	rm -rf data warehouse mlruns target logs reports .ci-work .ci-run spark-warehouse metastore_db

# --- demo: the production loop across a drift (docs/operations.md, "Demonstration") -------------
DEMO_ENV := FRAUDOPS_SETTINGS_FILE=demo/drift-demo.yaml FRAUDOPS_DUCKDB_PATH=$(CURDIR)/warehouse/demo.duckdb \
	DBT_TARGET_PATH=$(CURDIR)/target/demo

.PHONY: demo demo-clean

demo: $(STAMP) ## replay a world with drift day by day (alerts, retraining, recovery), then ml report
	$(DEMO_ENV) $(BIN)/ml replay
	$(DEMO_ENV) $(BIN)/ml report --output reports/demo-report.html

demo-clean: ## remove what make demo wrote (make demo resumes an interrupted run otherwise)
	rm -rf data/demo warehouse/demo.duckdb warehouse/demo.duckdb.wal mlruns/demo target/demo reports/demo-report.html
