{#-
    read_landing_not_loaded(files, source_file): the landed rows of `files` (a table expression
    reading a whole feed folder), each with `_source_file` (the expression `source_file`, over
    the rows aliased `landed`), without the rows of files already in the bronze table being
    built ({{ this }}) on an incremental build; all of them otherwise. The part of spark__ and
    databricks__ read_landing that does not depend on the dialect: they read and list the whole
    feed folder on every build and pass only how they read it and name a row's file; DuckDB
    reads only the new files instead (read_landing_new_files). Portable SQL.
-#}
{% macro read_landing_not_loaded(files, source_file) %}
    {%- set landed = "(select landed.*, " ~ source_file ~ " as _source_file from " ~ files ~ " as landed)" -%}
    {%- if not is_incremental() -%}
        {{ return(landed) }}
    {%- endif -%}
    {{ return(
        "(select unloaded.* from " ~ landed ~ " as unloaded"
        ~ " where unloaded._source_file not in (select loaded._source_file from " ~ this ~ " as loaded))"
    ) }}
{% endmacro %}
