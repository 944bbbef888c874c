{#-
    transaction_features_config(): how gold.transaction_features is materialized on this adapter,
    as config() keyword arguments. The model is incremental (unique_key transaction_id, see
    models/marts/fraud/transaction_features.sql) where the warehouse can upsert rows by key:
    * DuckDB: delete+insert (delete the recomputed keys, insert their new rows);
    * Databricks: merge (Delta tables);
    * local Spark (dbt-spark session, parquet tables, no Delta): merge is impossible and
      insert_overwrite replaces whole partitions, which would make the recomputed set date-wide;
      the table is rebuilt in full instead (the same SELECT, is_incremental() false);
    * anything else: merge.
    The adapters' side is incremental_by_key_config's, given these strategies.
-#}
{% macro transaction_features_config() %}
    {{ return(incremental_by_key_config(databricks_strategy='merge', default_strategy='merge')) }}
{% endmacro %}
