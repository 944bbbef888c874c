"""Every warehouse relation ``ml`` reads or writes, named once.

The ``scoring`` tables are written by ``ml`` and declared as dbt sources
(models/marts/monitoring/_scoring__sources.yml); the others are dbt models ``ml`` reads.
tests/platform/test_config_surface.py checks that the dbt project declares the same names.
"""

from __future__ import annotations

# --- silver (dbt): the online feature state bootstraps from them ---------------------------------
TRANSACTIONS = "silver.int_transactions_deduplicated"
FRAUD_REPORTS = "silver.int_fraud_reports_deduplicated"
#: The silver columns the features are computed from (the online state, the pandas reference).
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "tx_datetime",
    "tx_epoch_s",
    "customer_id",
    "terminal_id",
    "tx_amount",
)

# --- gold (dbt) -----------------------------------------------------------------------------------
FEATURES = "gold.transaction_features"
PERFORMANCE = "gold.model_performance_daily"
DRIFT = "gold.feature_drift_daily"
ALERTS = "gold.fraud_alerts"
LATEST_PREDICTIONS = "gold.latest_predictions"
KPIS = "gold.fraud_kpis_daily"
QUARANTINE = "gold.landing_quarantine"

# --- scoring (written by ml, dbt sources) ----------------------------------------------------------
SCORING_SCHEMA = "scoring"
PREDICTIONS = f"{SCORING_SCHEMA}.predictions"
FEATURE_REFERENCE = f"{SCORING_SCHEMA}.feature_reference"
FEATURE_REFERENCE_SAMPLE = f"{SCORING_SCHEMA}.feature_reference_sample"
MODEL_EVENTS = f"{SCORING_SCHEMA}.model_events"
#: The top reasons (ml/lifecycle/explain.py) of every alerted transaction, written with the predictions.
PREDICTION_EXPLANATIONS = f"{SCORING_SCHEMA}.prediction_explanations"

#: scoring.predictions: one row per (transaction, model version).
PREDICTION_KEYS: tuple[str, ...] = ("transaction_id", "model_version")
PREDICTION_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "score",
    "is_alert",
    "model_name",
    "model_version",
    "scored_at",
)

#: Column types of the scoring tables that are dbt sources (SQL types every adapter reads: DuckDB,
#: Spark, Databricks). dbt creates them empty before any model reads them (macro
#: create_scoring_sources, on-run-start), from the dbt var ``scoring_tables`` that ml passes from
#: here (ml/platform/runtime.py dbt_vars); dbt_project.yml declares the same default (tested).
SCORING_SOURCE_COLUMNS: dict[str, dict[str, str]] = {
    "predictions": {
        "transaction_id": "bigint",
        "score": "double",
        "is_alert": "boolean",
        "model_name": "string",
        "model_version": "string",
        "scored_at": "timestamp",
    },
    "prediction_explanations": {
        "transaction_id": "bigint",
        "model_name": "string",
        "model_version": "string",
        "reason_rank": "int",
        "feature": "string",
        "feature_value": "double",
        "strength": "double",
        "strength_space": "string",
        "scored_at": "timestamp",
    },
    "feature_reference": {
        "model_name": "string",
        "model_version": "string",
        "feature": "string",
        "bin_index": "int",
        "bin_lower": "double",
        "bin_upper": "double",
        "expected_fraction": "double",
    },
    "feature_reference_sample": {
        "model_name": "string",
        "model_version": "string",
        "feature": "string",
        "value": "double",
    },
}

#: Columns of the feature table that identify a transaction (besides the features and label).
ID_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "tx_datetime",
    "tx_date",
    "customer_id",
    "terminal_id",
)
REPORTED_AT = "fraud_reported_at"
DATE_COLUMN = "tx_date"
CUSTOMER_COLUMN = "customer_id"
AMOUNT_COLUMN = "tx_amount"
