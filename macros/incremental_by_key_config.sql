{#-
    incremental_by_key_config(databricks_strategy, default_strategy): config() keyword arguments
    of a model that is incremental by its unique_key where the warehouse can replace rows by key,
    on this adapter. What differs between such models (which strategy fits their keys) is passed
    in; what the adapters can do is decided here, once:
    * DuckDB: delete+insert (delete the recomputed keys, insert their new rows);
    * Databricks: databricks_strategy (Delta tables: merge, or delete+insert for keys with
      several rows);
    * local Spark (dbt-spark session, parquet tables, no Delta): no upsert and no delete, so the
      table is rebuilt in full instead (the same SELECT, is_incremental() false);
    * anything else: default_strategy.
    Called by the per-model *_config macros, which say why their model needs its strategies.
-#}
{% macro incremental_by_key_config(databricks_strategy, default_strategy) %}
    {{ return(adapter.dispatch('incremental_by_key_config')(databricks_strategy, default_strategy)) }}
{% endmacro %}

{% macro default__incremental_by_key_config(databricks_strategy, default_strategy) %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': default_strategy}) }}
{% endmacro %}

{% macro duckdb__incremental_by_key_config(databricks_strategy, default_strategy) %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert'}) }}
{% endmacro %}

{% macro spark__incremental_by_key_config(databricks_strategy, default_strategy) %}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{% macro databricks__incremental_by_key_config(databricks_strategy, default_strategy) %}
    {{ return({'materialized': 'incremental', 'incremental_strategy': databricks_strategy}) }}
{% endmacro %}
