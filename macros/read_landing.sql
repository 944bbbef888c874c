{#-
    read_landing(relation): the landed files of a landing source table as something to select
    from (`select ... from {{ read_landing(source('landing', 'transactions')) }} as landed`).
    Yields the contract's file columns (source yml), the hive partition key (from the folder
    name) and `_source_file` (the path of the file each row comes from). A column missing
    from a file reads as null; a column not in the contract is ignored.

    Only staging models call it, and only with source(); the file layout is
    <var landing_root>/<identifier>/<partition_column>=YYYY-MM-DD/*.parquet.
-#}
{% macro read_landing(relation) %}
    {{ return(adapter.dispatch('read_landing')(relation)) }}
{% endmacro %}

{#- Adapters without a variant: a clear error. -#}
{% macro default__read_landing(relation) %}
    {{ raise_no_adapter_variant('read_landing') }}
{% endmacro %}

{#-
    DuckDB: read_parquet over the landing files this build loads (read_landing_new_files): on
    an incremental build only the files not in the bronze table yet, passed as an explicit list,
    so a one-day step reads one file per feed instead of the whole landing zone; on a first or
    full-refresh build the `*/*.parquet` glob. `schema` (a map keyed by column name, DuckDB
    >= 1.2) reads every contract column as varchar whatever its physical type in a file, so a
    mistyped column (an epoch integer where a timestamp belongs, text in an amount) lands as
    text and is quarantined with a reason downstream instead of failing the whole read; a
    missing column reads as its default (null) and other columns are not read. This is
    union_by_name's behaviour without its type unification, which fails on e.g. BIGINT vs
    TIMESTAMP (and `schema` cannot be combined with union_by_name). With no file to load (a
    feed that has not started, or no new file since the last build), an empty relation with the
    same columns. DuckDB reads every path as a glob pattern, so the root and each listed file
    are escaped (landing_glob_escape): a file named `x*.parquet` is read once, not with every
    file its name matches, and a root like `landing[1]` is a folder, not a pattern.
-#}
{% macro duckdb__read_landing(relation) %}
    {%- set contract = read_landing_contract(relation) -%}
    {#- paths are data: glob characters in the root or a file name match only themselves -#}
    {%- set pattern = (landing_glob_escape(contract.location) ~ '/*/*.parquet') | replace("'", "''") -%}
    {%- set files = [pattern] -%}
    {%- if execute -%}
        {%- set files = read_landing_new_files(relation) -%}
    {%- endif -%}
    {%- if not files -%}
        {%- do log(
            "read_landing: no new landing files match " ~ pattern ~ "; reading "
            ~ relation.identifier ~ " as empty",
            info=True,
        ) -%}
        {%- set null_columns = [] -%}
        {%- for column in contract.file_columns + ['_source_file', contract.partition_column] -%}
            {%- do null_columns.append('cast(null as varchar) as ' ~ column) -%}
        {%- endfor -%}
        {{ return('(select ' ~ null_columns | join(', ') ~ ' where false)') }}
    {%- endif -%}
    {%- set paths = "'" ~ pattern ~ "'" -%}
    {%- if is_incremental() -%}
        {%- set quoted = [] -%}
        {%- for file in files -%}
            {%- do quoted.append("'" ~ landing_glob_escape(file) | replace("'", "''") ~ "'") -%}
        {%- endfor -%}
        {%- set paths = '[' ~ quoted | join(', ') ~ ']' -%}
    {%- endif -%}
    {%- set schema_entries = [] -%}
    {%- for column in contract.file_columns -%}
        {%- do schema_entries.append(
            "'" ~ column ~ "': {name: '" ~ column ~ "', type: 'varchar', default_value: null}"
        ) -%}
    {%- endfor -%}
    {{ return(
        "read_parquet(" ~ paths ~ ", hive_partitioning = true, hive_types_autocast = false, "
        ~ "filename = '_source_file', schema = map {" ~ schema_entries | join(', ') ~ "})"
    ) }}
{% endmacro %}

{#-
    Apache Spark: the parquet data source over the feed folder; Spark discovers the hive
    partition column from the folder names. The file columns keep their parquet types (the
    staging model casts them to string); missing columns read as null only when the schema is
    merged across files, which read_landing_check_files switches on (spark.sql.parquet.mergeSchema)
    in the staging models' pre-hook. On an incremental build the whole folder is still listed and
    read, then the rows of files already in the bronze table are filtered out (an anti-join on
    `_source_file`): Spark has no clean way to hand the reader only the new files without
    listing them on the driver first (the DuckDB variant does that through glob()).
-#}
{% macro spark__read_landing(relation) %}
    {%- set contract = read_landing_contract(relation) -%}
    {{ return(read_landing_not_loaded("parquet.`" ~ contract.location ~ "`", "input_file_name()")) }}
{% endmacro %}

{#-
    Databricks (Unity Catalog volume or cloud path): read_files, with the schema merged across
    files; the hive partition column is inferred from the folder names and the file path comes
    from the hidden _metadata column. As on Spark, an incremental build reads the folder and
    filters out the files already in the bronze table (a streaming table over read_files, i.e.
    Auto Loader, would track the loaded files itself; not used, to keep one bronze model for
    every target).
-#}
{% macro databricks__read_landing(relation) %}
    {%- set contract = read_landing_contract(relation) -%}
    {{ return(read_landing_not_loaded(
        "read_files('" ~ contract.location ~ "', format => 'parquet', mergeSchema => true)",
        "landed._metadata.file_path",
    )) }}
{% endmacro %}
