{#-
    landing_filter_config(): how the models that only filter and project the silver verdicts
    (int_transactions_deduplicated, int_fraud_reports_deduplicated, landing_quarantine,
    landing_exact_duplicates) are materialized on this adapter, as config() keyword arguments.
    They are views where the verdicts are incremental: a view cannot disagree with the verdicts
    it filters (a retracted transaction leaves silver the moment its verdict changes) and costs
    nothing to build, and reading it is one scan of a verdict table:
    * DuckDB, Databricks and anything else: view;
    * local Spark: table (its verdict tables are rebuilt in full anyway, and these stay parquet
      tables that readers of the warehouse files see).
-#}
{% macro landing_filter_config() %}
    {{ return(adapter.dispatch('landing_filter_config')()) }}
{% endmacro %}

{% macro default__landing_filter_config() %}
    {{ return({'materialized': 'view'}) }}
{% endmacro %}

{% macro spark__landing_filter_config() %}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{% macro databricks__landing_filter_config() %}
    {{ return({'materialized': 'view'}) }}
{% endmacro %}
