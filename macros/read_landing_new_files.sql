{#-
    read_landing_new_files(relation): DuckDB only (glob() table function). The landing files of
    a landing source table that the staging model being built loads on this run, as a sorted
    list of paths exactly as DuckDB's glob() and read_parquet's `filename` spell them: on an
    incremental build, the files whose path is not in the bronze table ({{ this }}) yet; on a
    first or full-refresh build, every file. Computed once per call (a file landing between the
    pre-hook's call and the model's is loaded but not checked; the reader then names it if it
    is bad). Called by duckdb__read_landing and duckdb__read_landing_check_files at execution
    time. The root is escaped (landing_glob_escape): glob() returns the paths unescaped.
-#}
{% macro read_landing_new_files(relation) %}
    {%- set contract = read_landing_contract(relation) -%}
    {%- set pattern = (landing_glob_escape(contract.location) ~ '/*/*.parquet') | replace("'", "''") -%}
    {%- set landed = run_query("select file from glob('" ~ pattern ~ "') order by file").columns[0].values() -%}
    {%- if not is_incremental() -%}
        {{ return(landed | list) }}
    {%- endif -%}
    {%- set loaded = run_query(
        "select distinct loaded._source_file from " ~ this ~ " as loaded"
    ).columns[0].values() -%}
    {{ return(landed | reject('in', loaded) | list) }}
{% endmacro %}
