{#-
    fraud_kpis_daily_config(): how gold.fraud_kpis_daily is materialized on this adapter, as
    config() keyword arguments. The model is incremental (unique_key tx_date, one row per day,
    see models/marts/fraud/fraud_kpis_daily.sql) where the warehouse can upsert rows by key:
    * DuckDB: delete+insert (delete the recomputed days, insert their new rows);
    * Databricks: merge (Delta tables; one source row per key);
    * local Spark (dbt-spark session, parquet tables, no Delta): no upsert and no delete, so the
      table is rebuilt in full instead (the same SELECT, is_incremental() false);
    * anything else: delete+insert.
    The adapters' side is incremental_by_key_config's, given these strategies.
-#}
{% macro fraud_kpis_daily_config() %}
    {{ return(incremental_by_key_config(databricks_strategy='merge', default_strategy='delete+insert')) }}
{% endmacro %}
