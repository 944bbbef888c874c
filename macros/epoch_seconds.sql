{#-
    epoch_seconds(timestamp_expression): whole seconds since 1970-01-01 00:00:00 of a
    timestamp without time zone (its wall clock read as UTC), floored, as bigint. Independent
    of the session time zone.
-#}
{% macro epoch_seconds(timestamp_expression) %}
    {{ return(adapter.dispatch('epoch_seconds')(timestamp_expression)) }}
{% endmacro %}

{% macro default__epoch_seconds(timestamp_expression) -%}
    cast(floor(extract(epoch from {{ timestamp_expression }})) as bigint)
{%- endmacro %}

{% macro duckdb__epoch_seconds(timestamp_expression) -%}
    cast(floor(epoch({{ timestamp_expression }})) as bigint)
{%- endmacro %}

{#-
    Spark/Databricks: from the calendar fields, which read the timestamp's wall clock in the
    session time zone, the same zone that parsed it (unix_timestamp would shift it by the
    session zone's offset unless that is UTC).
-#}
{% macro spark__epoch_seconds(timestamp_expression) -%}
    (
        cast(datediff(cast({{ timestamp_expression }} as date), date '1970-01-01') as bigint) * 86400
        + hour({{ timestamp_expression }}) * 3600
        + minute({{ timestamp_expression }}) * 60
        + second({{ timestamp_expression }})
    )
{%- endmacro %}
