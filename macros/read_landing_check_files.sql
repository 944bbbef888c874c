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
    DuckDB, in this order; the first problem found stops the build with one line (DuckDB's
    error()) naming the path and what to do:
    1. the landing root holds at least one `*/*/*.parquet` file: a missing, mistyped or
       unmounted root is an error, never a green build of nothing;
    2. what the feed folder holds that the reader does not read (fraudops_landing_unread, a
       Python function of ml/dbt_duckdb_plugin.py): a name that is not UTF-8 stops the build
       (DuckDB would skip the file and lose its rows); sub-folders, broken links and other
       files (e.g. `.PARQUET`) are listed in one warning;
    3. a full refresh with no file to load does not replace a non-empty bronze table;
    then, for each file this build loads (read_landing_new_files: every file on a first or
    full-refresh build) and each `.parquet` file dropped directly in the feed folder:
    4. it sits in a `<partition_column>=...` folder;
    5. it is parquet (the 4-byte magic `PAR1` at its start and its end);
    6. no contract column appears twice in it (DuckDB would read one of them silently);
    7. its contract columns read to the end (fraudops_landing_file_error): corrupt pages
       otherwise fail the load with a reader error that does not name the file.
    Steps 1 and 3 are skipped with the dbt var `allow_empty_refresh: true` (emptying the
    warehouse on purpose). Every path is escaped for DuckDB's globbing (landing_glob_escape).
-#}
{% macro duckdb__read_landing_check_files(relation) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set contract = read_landing_contract(relation) -%}
    {%- set root = var('landing_root').rstrip('/') -%}
    {%- set allow_empty = var('allow_empty_refresh', false) in (true, 'true', 'True') -%}
    {%- set ns = namespace(problem=none) -%}

    {#- 1. a landing root without any landing file -#}
    {%- set any_file = run_query(
        "select count(*) from glob('" ~ (landing_glob_escape(root) ~ '/*/*/*.parquet') | replace("'", "''") ~ "')"
    ).columns[0].values()[0] -%}
    {%- if any_file == 0 and not allow_empty -%}
        {%- set ns.problem = "landing root " ~ root ~ " holds no landing file (<feed>/<day folder>/*.parquet):"
            ~ " it is missing, empty, mistyped or not mounted; point FRAUDOPS_LANDING_ROOT (dbt var landing_root)"
            ~ " at the landing folder, or pass --vars '{allow_empty_refresh: true}' to build from no file on purpose" -%}
    {%- endif -%}

    {#- 2. what the reader would not read -#}
    {%- if ns.problem is none -%}
        {%- set unread = run_query(
            "select unnest(fraudops_landing_unread('" ~ contract.location | replace("'", "''") ~ "'))"
        ).columns[0].values() -%}
        {%- set skipped = [] -%}
        {%- for entry in unread -%}
            {%- set kind, path = entry.split(' ', 1) -%}
            {%- if kind == 'not_utf8' and ns.problem is none -%}
                {%- set ns.problem = "landing file " ~ path ~ " has a name that is not UTF-8;"
                    ~ " DuckDB cannot read it: rename it in UTF-8 or move it out of the landing folder, then re-run" -%}
            {%- elif kind != 'not_utf8' -%}
                {%- do skipped.append(path ~ ' (' ~ kind | replace('_', ' ') ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if skipped -%}
            {%- do exceptions.warn(
                "read_landing: " ~ skipped | length ~ " entries of " ~ contract.location ~ " are not read"
                ~ " (only <day folder>/*.parquet files are): " ~ skipped | join(', ')
                ~ "; rename or move them if they hold data"
            ) -%}
        {%- endif -%}
    {%- endif -%}

    {%- set new_files = read_landing_new_files(relation) if ns.problem is none else [] -%}

    {#- 3. a full refresh that would replace a loaded table with nothing -#}
    {%- if ns.problem is none and not new_files and not is_incremental() and not allow_empty -%}
        {%- set existing = load_relation(this) -%}
        {%- if existing is not none -%}
            {%- set loaded = run_query("select count(*) from " ~ existing).columns[0].values()[0] -%}
            {%- if loaded > 0 -%}
                {%- set ns.problem = "refusing to replace the " ~ loaded ~ " rows of " ~ this
                    ~ " with nothing: no landing file under " ~ contract.location
                    ~ "; check the landing root (FRAUDOPS_LANDING_ROOT), or pass --vars '{allow_empty_refresh: true}'"
                    ~ " to empty it on purpose" -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}

    {#- 4. files outside a partition folder (a loose file would be ignored by the */*.parquet glob) -#}
    {%- if ns.problem is none -%}
        {%- set loose = run_query(
            "select file from glob('" ~ (landing_glob_escape(contract.location) ~ '/*.parquet') | replace("'", "''") ~ "') order by file"
        ).columns[0].values() -%}
        {%- for file in (loose | list) + new_files -%}
            {%- set folder = file.split('/')[-2] -%}
            {%- if ns.problem is none and not folder.startswith(contract.partition_column ~ '=') -%}
                {%- set ns.problem = "landing file " ~ file ~ " is not in a " ~ contract.partition_column
                    ~ "=YYYY-MM-DD folder; move it into its day's folder (or out of "
                    ~ contract.location ~ ") and re-run" -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- if new_files and ns.problem is none -%}
        {%- set quoted = [] -%}
        {%- for file in new_files -%}
            {%- do quoted.append("'" ~ landing_glob_escape(file) | replace("'", "''") ~ "'") -%}
        {%- endfor -%}
        {#- 5. not parquet at all -#}
        {%- set not_parquet = run_query(
            "select filename from read_blob([" ~ quoted | join(', ') ~ "])"
            ~ " where size < 12 or content[1:4] <> 'PAR1'::blob or content[size - 3:size] <> 'PAR1'::blob"
            ~ " order by filename"
        ).columns[0].values() -%}
        {%- if not_parquet -%}
            {%- set ns.problem = "landing file " ~ not_parquet[0] ~ " is not a parquet file"
                ~ (" (and " ~ (not_parquet | length - 1) ~ " more)" if not_parquet | length > 1 else "")
                ~ "; remove it or replace it with its parquet file, then re-run" -%}
        {%- endif -%}
    {%- endif -%}

    {%- set columns = contract.file_columns + [contract.partition_column] -%}
    {%- if new_files and ns.problem is none -%}
        {#- 6. a contract column twice in a file (column names compare case-insensitively) -#}
        {%- set duplicated = run_query(
            "select file_name, lower(name) as column_name from parquet_schema([" ~ quoted | join(', ') ~ "])"
            ~ " where lower(name) in ('" ~ columns | join("', '") ~ "')"
            ~ " group by file_name, lower(name) having count(*) > 1 order by file_name, column_name limit 1"
        ).rows -%}
        {%- if duplicated -%}
            {%- set ns.problem = "landing file " ~ duplicated[0][0] ~ " has more than one column "
                ~ duplicated[0][1] ~ "; write it with one " ~ duplicated[0][1]
                ~ " column (or move it out of the landing folder), then re-run" -%}
        {%- endif -%}
    {%- endif -%}

    {%- if new_files and ns.problem is none -%}
        {#- 7. pages that do not decode -#}
        {%- set files_sql = [] -%}
        {%- for file in new_files -%}
            {%- do files_sql.append("('" ~ file | replace("'", "''") ~ "')") -%}
        {%- endfor -%}
        {%- set unreadable = run_query(
            "select checked.file, checked.error from ("
            ~ "select landed.file, fraudops_landing_file_error(landed.file, ['"
            ~ contract.file_columns | join("', '") ~ "']) as error"
            ~ " from (values " ~ files_sql | join(', ') ~ ") as landed (file)"
            ~ ") as checked where checked.error is not null order by checked.file limit 1"
        ).rows -%}
        {%- if unreadable -%}
            {%- set ns.problem = "landing file " ~ unreadable[0][0] ~ " cannot be read (" ~ unreadable[0][1]
                ~ "): it is damaged; move it out of the landing folder, land it again, then re-run" -%}
        {%- endif -%}
    {%- endif -%}

    {%- if ns.problem is not none -%}
        {{ return("select error('" ~ ns.problem | replace("'", "''") ~ "')") }}
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
