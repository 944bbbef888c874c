{#-
    The data tests of a daily build look at the days the latest load can have changed, not at
    the whole history (issue 15: a daily step must cost the same in year three as in month one).

    With the var data_tests_scope = 'latest_load' (the daily operator passes it; the default
    'all' tests every row, as CI, full builds and the weekly job do), every generic data test of
    a model that declares its day column(s) (meta data_tests_window, set by folder in
    dbt_project.yml, a list where a row belongs to more than one day: a feature row is changed
    on its transaction's day and when its fraud report arrives) reads only that model's rows
    with such a day on or after the window start (macro get_where_subquery), and the singular
    tests bound themselves with data_tests_window_condition.

    data_tests_window_start(): a SQL scalar subquery, the earliest day among the rows of the
    latest load into bronze (the rows whose _loaded_at is the largest of both feeds): each new
    transaction's landed day and own day (if it parses), each new fraud report's landed day and
    report day. A late or re-delivered file of an old day widens the window to that day; a
    change on day d changes only features of days >= d, and a report labels its transaction's
    row on the report's day (fraud_reported_at). Null (nothing in the window) before any load.
-#}
{% macro data_tests_window_start() -%}
    {{ return(adapter.dispatch('data_tests_window_start')()) }}
{%- endmacro %}

{#-
    DuckDB: the start as a date literal, queried when the test runs (a few ms), so that the
    tests' scans skip the row groups of older days (zone maps prune on constants, not on a
    subquery). Spark and Databricks keep the subquery: a query per test would be a round trip
    to the warehouse each.
-#}
{% macro duckdb__data_tests_window_start() -%}
    {%- set query = default__data_tests_window_start() -%}
    {%- if not execute -%}
        {{ return(query) }}
    {%- endif -%}
    {%- set start = run_query('select ' ~ query ~ ' as window_start').columns[0].values()[0] -%}
    {{ return('cast(null as date)' if start is none else "date '" ~ start ~ "'") }}
{%- endmacro %}

{% macro default__data_tests_window_start() -%}
    {#- the bronze feeds that exist: a test can run before the other feed's first build -#}
    {%- set feeds = [] -%}
    {%- for name, day_column in [
        ('stg_landing__transactions', 'tx_datetime'),
        ('stg_landing__fraud_reports', 'reported_at'),
    ] -%}
        {%- set relation = data_tests_window_relation(name) -%}
        {%- if relation is not none -%}
            {%- do feeds.append((relation, day_column)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not feeds -%}
        {{ return('cast(null as date)') }}
    {%- endif -%}
    {%- set maxima = [] -%}
    {%- for relation, _ in feeds -%}
        {%- do maxima.append('select max(loaded._loaded_at) as loaded_at from ' ~ relation ~ ' as loaded') -%}
    {%- endfor -%}
    {%- set latest = '(select max(loads.loaded_at) from (' ~ maxima | join(' union all ') ~ ') as loads)' -%}
    {%- set changed = [] -%}
    {%- for relation, day_column in feeds -%}
        {%- do changed.append(
            'select least(feed._landed_date, ' ~ try_cast('feed.' ~ day_column, 'date') ~ ') as changed_day'
            ~ ' from ' ~ relation ~ ' as feed where feed._loaded_at = ' ~ latest
        ) -%}
    {%- endfor -%}
    {{ return('(select min(changed.changed_day) from (' ~ changed | join(' union all ') ~ ') as changed)') }}
{%- endmacro %}

{#- True when the build tests the latest load only (var data_tests_scope). -#}
{% macro data_tests_latest_load_only() -%}
    {%- set scope = var('data_tests_scope', 'all') -%}
    {%- if scope not in ('all', 'latest_load') -%}
        {{ exceptions.raise_compiler_error(
            "var data_tests_scope must be 'all' or 'latest_load', not '" ~ scope ~ "'"
        ) }}
    {%- endif -%}
    {{ return(scope == 'latest_load') }}
{%- endmacro %}

{#-
    data_tests_window_condition(day_columns, days_before=0): in scope 'latest_load', a condition
    that keeps the rows with a day (of day_columns: one column or a list) in the window (widened
    by days_before days, for a test that needs the history before it) and the rows without a
    day (quarantined rows whose landed day did not parse: few, and always tested); 'true'
    (every row) in scope 'all'. A timestamp column compares as its day.
-#}
{% macro data_tests_window_condition(day_columns, days_before=0) -%}
    {#- (at parse time the graph is empty: what is rendered then is never run) -#}
    {%- if execute and data_tests_latest_load_only() -%}
        {%- set start = data_tests_window_start() -%}
        {%- if days_before -%}
            {#- `- interval 'n' day`: DuckDB, Spark and Databricks alike, and null stays null
                (dbt.dateadd asks Databricks for its runtime's capabilities) -#}
            {%- set start = 'cast(' ~ start ~ " - interval '" ~ days_before ~ "' day as date)" -%}
        {%- endif -%}
        {%- set columns = [day_columns] if day_columns is string else day_columns -%}
        {%- set conditions = [] -%}
        {%- for column in columns -%}
            {%- do conditions.append(column ~ ' >= ' ~ start) -%}
        {%- endfor -%}
        {%- do conditions.append(columns[0] ~ ' is null') -%}
        {{ return('(' ~ conditions | join(' or ') ~ ')') }}
    {%- endif -%}
    {{ return('true') }}
{%- endmacro %}

{#-
    The relation of a model of this project, by name (tests cannot ref() at run time), or none
    while it does not exist yet.
-#}
{% macro data_tests_window_relation(name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
