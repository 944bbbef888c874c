{#-
    read_landing_not_loaded(landed): `landed` (a parenthesised subquery of landed rows with
    `_source_file`) without the rows of files already in the bronze table being built
    ({{ this }}) on an incremental build; `landed` itself otherwise. The file filter of the
    readers that list and read the whole feed folder on every build (spark__ and databricks__
    read_landing); DuckDB reads only the new files instead (read_landing_new_files). Portable SQL.
-#}
{% macro read_landing_not_loaded(landed) %}
    {%- if not is_incremental() -%}
        {{ return(landed) }}
    {%- endif -%}
    {{ return(
        "(select unloaded.* from " ~ landed ~ " as unloaded"
        ~ " where unloaded._source_file not in (select loaded._source_file from " ~ this ~ " as loaded))"
    ) }}
{% endmacro %}
