{#-
    landing_verdicts_config(): how the silver verdict models (int_transactions_validated,
    int_fraud_reports_validated: one row per bronze row) are materialized on this adapter, as
    config() keyword arguments. They are incremental with unique_key transaction_id where the
    warehouse can replace every row of a key at once: a run recomputes the verdicts of every
    row of the transaction ids it touches, and several rows share an id (duplicates), so the
    strategy must delete all old rows of those ids and insert the new ones:
    * DuckDB: delete+insert;
    * Databricks: delete+insert (dbt-databricks >= 1.11: REPLACE ON from DBR 17.1, a delete then
      an insert before). Its other strategies do not fit: merge needs one source row per key,
      insert_overwrite replaces whole partitions and replace_where takes a static predicate;
    * local Spark (dbt-spark session, parquet tables, no Delta): no delete, so the table is rebuilt
      in full instead (the same SELECT, is_incremental() false);
    * anything else: delete+insert (dbt-core's portable implementation).
    The adapters' side is incremental_by_key_config's, given these strategies.
-#}
{% macro landing_verdicts_config() %}
    {{ return(incremental_by_key_config(databricks_strategy='delete+insert', default_strategy='delete+insert')) }}
{% endmacro %}
