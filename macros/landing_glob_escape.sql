{#-
    landing_glob_escape(path): `path` as a DuckDB glob pattern that matches only itself. DuckDB
    reads every path it is given (read_parquet, read_blob, parquet_schema, glob) as a glob
    pattern, so a landing root like `/data/landing[1]` or a file named `tx_2018-04-01*.parquet`
    would match other paths (or none). Each glob character becomes a one-character class:
    `[` -> `[[]`, `*` -> `[*]`, `?` -> `[?]` (in that order). Used by the DuckDB landing
    readers and checks; ml/dbt_duckdb_plugin.py escapes the same way.
-#}
{% macro landing_glob_escape(path) -%}
    {{ return(path | replace('[', '[[]') | replace('*', '[*]') | replace('?', '[?]')) }}
{%- endmacro %}
