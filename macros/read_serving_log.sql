{#-
    read_serving_log(relation): the inference log files of a `serving` source table
    (models/staging/serving/_serving__sources.yml) as something to select from, with the
    columns declared there. The files live in <var serving_log_root>/<identifier>/*.parquet;
    the server writes them under hidden temporary names and renames them, so readers (which
    skip hidden files) never see half a file. Only the serving staging model calls it.
-#}
{% macro read_serving_log(relation) %}
    {{ return(adapter.dispatch('read_serving_log')(relation)) }}
{% endmacro %}

{#- The folder of a serving source table. -#}
{% macro serving_log_location(relation) %}
    {{ return(var('serving_log_root').rstrip('/') ~ '/' ~ relation.identifier) }}
{% endmacro %}

{#- Adapters without a variant: a clear error. -#}
{% macro default__read_serving_log(relation) %}
    {{ raise_no_adapter_variant('read_serving_log') }}
{% endmacro %}

{#- The declared columns of a serving source table, as (name, data_type) pairs. -#}
{% macro serving_log_columns(relation) %}
    {%- set columns = [] -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == 'serving' and node.identifier == relation.identifier -%}
            {%- for column in node.columns.values() -%}
                {%- do columns.append((column.name, column.data_type)) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}

{#-
    DuckDB: read_parquet over the folder's files; with no file yet (no server has run), an
    empty relation with the declared columns and types, so the build stays green.
-#}
{% macro duckdb__read_serving_log(relation) %}
    {%- set pattern = (serving_log_location(relation) ~ '/*.parquet') | replace("'", "''") -%}
    {%- set found = 1 -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found == 0 -%}
        {%- set typed = [] -%}
        {%- for name, data_type in serving_log_columns(relation) -%}
            {%- do typed.append('cast(null as ' ~ data_type ~ ') as ' ~ name) -%}
        {%- endfor -%}
        {{ return('(select ' ~ typed | join(', ') ~ ' where false)') }}
    {%- endif -%}
    {{ return("read_parquet('" ~ pattern ~ "', union_by_name = true)") }}
{% endmacro %}

{#-
    Apache Spark: the source as a catalog table over the folder, with the declared columns
    (varchar is Spark's string). The parquet data source read by path needs a file to infer
    the schema, so a fresh clone's build failed until a server had run; a table with a declared
    schema reads a missing or empty folder as no rows. Dropped and created again on every run
    (an external table: dropping it leaves the files), so it follows serving_log_root and sees
    every file written since.
-#}
{% macro spark__read_serving_log(relation) %}
    {%- if execute -%}
        {%- set typed = [] -%}
        {%- for name, data_type in serving_log_columns(relation) -%}
            {%- do typed.append(name ~ ' ' ~ ('string' if data_type == 'varchar' else data_type)) -%}
        {%- endfor -%}
        {%- set location = serving_log_location(relation) | replace("'", "\\'") -%}
        {%- do run_query('create schema if not exists ' ~ relation.schema) -%}
        {%- do run_query('drop table if exists ' ~ relation) -%}
        {%- do run_query(
            'create table ' ~ relation ~ ' (' ~ typed | join(', ') ~ ") using parquet location '"
            ~ location ~ "'"
        ) -%}
    {%- endif -%}
    {{ return(relation | string) }}
{% endmacro %}

{#- Databricks (Unity Catalog volume or cloud path): read_files, schema merged across files. -#}
{% macro databricks__read_serving_log(relation) %}
    {{ return(
        "read_files('" ~ serving_log_location(relation) ~ "', format => 'parquet', mergeSchema => true)"
    ) }}
{% endmacro %}
