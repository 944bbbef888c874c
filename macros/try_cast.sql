{#-
    try_cast(expression, data_type): the value as `data_type`, or null when it does not parse
    (never an error), for validating landed text. Stricter than try_cast(x as type) alone, so
    that DuckDB and Spark agree:
    - integer types accept integral numbers only: '12' and '12.0' are 12, '12.5' is null
      (DuckDB would round it to 13, Spark returns null for '12.0'); out of range is null;
    - date and timestamp must start with a digit: DuckDB and Spark both accept special words
      ('epoch', 'infinity', and on Spark 'now', 'today', 'yesterday'), which are not landed dates.
    try_cast(x as type) itself is shared by DuckDB, Spark SQL (3.2+) and Databricks.
-#}
{% macro try_cast(expression, data_type) %}
    {{ return(adapter.dispatch('try_cast')(expression, data_type)) }}
{% endmacro %}

{#- Portable SQL; an adapter whose try_cast differs gets its own variant. -#}
{% macro default__try_cast(expression, data_type) -%}
    {%- set kind = data_type | lower -%}
    {%- if kind in ('bigint', 'int', 'integer', 'smallint', 'tinyint') -%}
        {#- plain digits (the common case) cast directly; anything else must be an exact
            decimal with no fraction (decimal, not double: 16+ digit ids stay exact) -#}
        {%- set exact = 'try_cast(' ~ expression ~ ' as decimal(38, 9))' -%}
        {{ return(
            "case when translate(" ~ expression ~ ", '-0123456789', '') = ''"
            ~ " then try_cast(" ~ expression ~ " as " ~ data_type ~ ")"
            ~ " when " ~ exact ~ " = floor(" ~ exact ~ ")"
            ~ " then try_cast(" ~ exact ~ " as " ~ data_type ~ ") end"
        ) }}
    {%- elif kind in ('date', 'timestamp') -%}
        {{ return(
            "case when substring(trim(" ~ expression ~ "), 1, 1) between '0' and '9'"
            ~ " then try_cast(" ~ expression ~ " as " ~ data_type ~ ") end"
        ) }}
    {%- endif -%}
    {{ return('try_cast(' ~ expression ~ ' as ' ~ data_type ~ ')') }}
{%- endmacro %}

{#-
    DuckDB: a timestamp is parsed as `timestamptz` and converted to the UTC wall clock, so a
    landed value with an offset ('2018-04-02 08:00:00+05:00', '...Z') lands as its UTC time
    (a plain `try_cast(... as timestamp)` drops the offset silently); a value without one is
    read in the session zone, which the profile fixes to UTC (profiles.yml `settings`), so it
    means UTC whatever the host's zone. Spark needs no variant: its cast honours offsets and
    its session zone is UTC (profiles.yml).
-#}
{% macro duckdb__try_cast(expression, data_type) -%}
    {%- if data_type | lower == 'timestamp' -%}
        {{ return(
            "case when substring(trim(" ~ expression ~ "), 1, 1) between '0' and '9'"
            ~ " then timezone('UTC', try_cast(" ~ expression ~ " as timestamptz)) end"
        ) }}
    {%- endif -%}
    {{ return(default__try_cast(expression, data_type)) }}
{%- endmacro %}
