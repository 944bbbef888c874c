{#-
    read_landing_check_files(relation): the staging models' pre-hook. Checks the landing files
    that this build is about to load, so that a bad file stops the build with one clear line
    naming it instead of a reader error. Renders the SQL to run as the hook (often nothing).
-#}
{% macro read_landing_check_files(relation) %}
    {{ return(adapter.dispatch('read_landing_check_files')(relation)) }}
{% endmacro %}

{#- Other adapters: nothing to check here (their readers name the failing file). -#}
{% macro default__read_landing_check_files(relation) %}
{% endmacro %}

{#-
    DuckDB: for each file not yet in the bronze table (read_landing_new_files: every file on a
    first or full-refresh build), check that it sits in a `<partition_column>=...` folder (a parquet file dropped
    directly in the feed folder is reported too, the reader would skip it) and that it is parquet
    (the 4-byte magic `PAR1` at its start and its end; DuckDB's own error for such a file is
    "No magic bytes found at end of file"). For the first bad file, the hook is a query that
    fails with one line naming it (DuckDB's error()); reads the contents of new files only.
-#}
{% macro duckdb__read_landing_check_files(relation) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set contract = read_landing_contract(relation) -%}
    {%- set new_files = read_landing_new_files(relation) -%}
    {#- a file dropped directly in the feed folder would be ignored by the */*.parquet glob -#}
    {%- set loose = run_query(
        "select file from glob('" ~ (contract.location ~ '/*.parquet') | replace("'", "''") ~ "') order by file"
    ).columns[0].values() -%}

    {%- set problems = [] -%}
    {%- for file in (loose | list) + new_files -%}
        {%- set folder = file.split('/')[-2] -%}
        {%- if not folder.startswith(contract.partition_column ~ '=') -%}
            {%- do problems.append(
                "landing file " ~ file ~ " is not in a " ~ contract.partition_column
                ~ "=YYYY-MM-DD folder; move it into its day's folder (or out of "
                ~ contract.location ~ ") and re-run"
            ) -%}
        {%- endif -%}
    {%- endfor -%}

    {%- if new_files and not problems -%}
        {%- set quoted = [] -%}
        {%- for file in new_files -%}
            {%- do quoted.append("'" ~ file | replace("'", "''") ~ "'") -%}
        {%- endfor -%}
        {%- set not_parquet = run_query(
            "select filename from read_blob([" ~ quoted | join(', ') ~ "])"
            ~ " where size < 12 or content[1:4] <> 'PAR1'::blob or content[size - 3:size] <> 'PAR1'::blob"
            ~ " order by filename"
        ).columns[0].values() -%}
        {%- if not_parquet -%}
            {%- do problems.append(
                "landing file " ~ not_parquet[0] ~ " is not a parquet file"
                ~ (" (and " ~ (not_parquet | length - 1) ~ " more)" if not_parquet | length > 1 else "")
                ~ "; remove it or replace it with its parquet file, then re-run"
            ) -%}
        {%- endif -%}
    {%- endif -%}

    {%- if problems -%}
        {{ return("select error('" ~ problems[0] | replace("'", "''") ~ "')") }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}

{#-
    Spark: merge the parquet schema across the feed's files, so that a file missing a column
    reads it as null (spark__read_landing reads the whole folder).
-#}
{% macro spark__read_landing_check_files(relation) %}
    set spark.sql.parquet.mergeSchema = true
{% endmacro %}

{#- Databricks: read_files merges the schema itself (mergeSchema option). -#}
{% macro databricks__read_landing_check_files(relation) %}
{% endmacro %}
