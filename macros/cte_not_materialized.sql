{#-
    cte_not_materialized(): the keyword that keeps a CTE inlined into each query that reads it,
    written between `as` and the CTE's parenthesis (see int_transactions_validated).
    DuckDB (>= 1.1) materializes a CTE whose rows several parts of the query read, whole and in
    memory: for a wide CTE over a large table that is the statement's peak memory (the bronze
    transactions of int_transactions_validated: 1.07 -> 0.82 GB for 1.78M rows,
    bench/bench_scale.py). Inlined, each reader scans the table again, which DuckDB streams.
    Spark SQL and Databricks inline CTEs and do not know the keyword: empty there.
-#}
{% macro cte_not_materialized() %}
    {{- return(adapter.dispatch('cte_not_materialized')()) -}}
{% endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}
