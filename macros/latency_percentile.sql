{#-
    latency_percentile(column, fraction): the continuous (interpolated) percentile of `column`
    in a group, e.g. p99 = latency_percentile('latency_ms', 0.99). DuckDB's quantile_cont and
    Spark's exact percentile interpolate the same way.
-#}
{% macro latency_percentile(column, fraction) %}
    {{ return(adapter.dispatch('latency_percentile')(column, fraction)) }}
{% endmacro %}

{% macro default__latency_percentile(column, fraction) %}
    {{ return('percentile(' ~ column ~ ', ' ~ fraction ~ ')') }}
{% endmacro %}

{% macro duckdb__latency_percentile(column, fraction) %}
    {{ return('quantile_cont(' ~ column ~ ', ' ~ fraction ~ ')') }}
{% endmacro %}
