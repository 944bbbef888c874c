{#-
    fraud_kpis_daily_config(): how gold.fraud_kpis_daily is materialized on this adapter, as
    config() keyword arguments. The model is incremental (unique_key tx_date, one row per day,
    see models/marts/fraud/fraud_kpis_daily.sql) where the warehouse can upsert rows by key:
    * DuckDB: delete+insert (delete the recomputed days, insert their new rows);
    * Databricks: merge (Delta tables; one source row per key);
    * local Spark (dbt-spark session, parquet tables, no Delta): no upsert and no delete, so the
      table is rebuilt in full instead (the same SELECT, is_incremental() false);
    * anything else: delete+insert.
-#}
{% macro fraud_kpis_daily_config() %}
    {{ return(adapter.dispatch('fraud_kpis_daily_config')()) }}
{% endmacro %}

{% macro default__fraud_kpis_daily_config() %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert'}) }}
{% endmacro %}

{% macro duckdb__fraud_kpis_daily_config() %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert'}) }}
{% endmacro %}

{% macro spark__fraud_kpis_daily_config() %}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{% macro databricks__fraud_kpis_daily_config() %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'merge'}) }}
{% endmacro %}
