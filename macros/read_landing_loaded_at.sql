{#-
    read_landing_loaded_at(): the bronze load timestamp, `_loaded_at`: when this dbt run
    started (UTC, dbt's run_started_at), as a timestamp literal, so all rows loaded by one run
    share it. Portable SQL.
-#}
{% macro read_landing_loaded_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
{%- endmacro %}
