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
        {%- for node in graph.sources.values() -%}
            {%- if node.source_name == 'serving' and node.identifier == relation.identifier -%}
                {%- for column in node.columns.values() -%}
                    {%- do typed.append('cast(null as ' ~ column.data_type ~ ') as ' ~ column.name) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
        {{ return('(select ' ~ typed | join(', ') ~ ' where false)') }}
    {%- endif -%}
    {{ return("read_parquet('" ~ pattern ~ "', union_by_name = true)") }}
{% endmacro %}

{#-
    Apache Spark: the parquet data source over the folder. Spark needs a file to infer the
    schema: the server writes a zero-row one on start (ml/serving/inference_log.py:initialise_log).
-#}
{% macro spark__read_serving_log(relation) %}
    {{ return("parquet.`" ~ serving_log_location(relation) ~ "`") }}
{% endmacro %}

{#- Databricks (Unity Catalog volume or cloud path): read_files, schema merged across files. -#}
{% macro databricks__read_serving_log(relation) %}
    {{ return(
        "read_files('" ~ serving_log_location(relation) ~ "', format => 'parquet', mergeSchema => true)"
    ) }}
{% endmacro %}
