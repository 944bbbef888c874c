{#-
    iso_day_of_week(timestamp_expression): ISO day of the week of a timestamp as an integer,
    1 = Monday .. 7 = Sunday (so a weekend day is >= 6). DuckDB and Postgres read it with
    `extract(isodow ...)`; Spark/Databricks number days 0 = Monday .. 6 = Sunday in weekday().
-#}
{% macro iso_day_of_week(timestamp_expression) %}
    {{ return(adapter.dispatch('iso_day_of_week')(timestamp_expression)) }}
{% endmacro %}

{% macro default__iso_day_of_week(timestamp_expression) -%}
    cast(extract(isodow from {{ timestamp_expression }}) as integer)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(timestamp_expression) -%}
    cast(isodow({{ timestamp_expression }}) as integer)
{%- endmacro %}

{% macro spark__iso_day_of_week(timestamp_expression) -%}
    (weekday({{ timestamp_expression }}) + 1)
{%- endmacro %}
