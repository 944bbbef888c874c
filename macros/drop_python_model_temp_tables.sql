{#-
    drop_python_model_temp_tables(): the project's on-run-end hook. On DuckDB, an incremental
    dbt Python model writes its new rows to a table named <model>__dbt_tmp<timestamp> that
    dbt-duckdb (1.11) leaves behind: one per model and run, so a daily job (or `ml replay`) would
    pile them up. This drops those tables of the project's Python models; elsewhere it does
    nothing (dbt-databricks drops its own since 1.10). Renders the SQL the hook runs.
-#}
{% macro drop_python_model_temp_tables() %}
    {{ return(adapter.dispatch('drop_python_model_temp_tables')()) }}
{% endmacro %}

{% macro default__drop_python_model_temp_tables() %}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__drop_python_model_temp_tables() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set patterns = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.language == 'python' -%}
            {%- do patterns.append("table_name like '" ~ node.name ~ "\\_\\_dbt\\_tmp%' escape '\\'") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not patterns -%}
        {{ return('') }}
    {%- endif -%}
    {%- set leftovers = run_query(
        "select table_schema, table_name from information_schema.tables"
        ~ " where table_catalog = '" ~ target.database ~ "' and table_type = 'BASE TABLE'"
        ~ " and (" ~ patterns | join(' or ') ~ ")"
    ) -%}
    {%- set drops = [] -%}
    {%- for row in leftovers.rows -%}
        {%- do drops.append('drop table if exists "' ~ target.database ~ '"."' ~ row[0] ~ '"."' ~ row[1] ~ '"') -%}
    {%- endfor -%}
    {{ return(drops | join(';\n')) }}
{% endmacro %}
