{#-
    The data tests of a daily build look at the days the latest load can have changed, not at
    the whole history (issue 15: a daily step must cost the same in year three as in month one).

    With the var data_tests_scope = 'latest_load' (the daily operator passes it; the default
    'all' tests every row, as CI, full builds and the weekly job do), every generic data test of
    a model that declares its day column (meta data_tests_window, set by folder in
    dbt_project.yml) reads only that model's rows of days on or after the window start
    (macro get_where_subquery), and the singular tests bound themselves with
    data_tests_window_condition.

    data_tests_window_start(): a SQL scalar subquery, the earliest day among the rows of the
    latest load into bronze (the rows whose _loaded_at is the largest of both feeds), so a late
    or re-delivered file of an old day widens the window to that day:
    * each new transaction row: its landed day and its own day (if it parses);
    * each new fraud report row: its landed day, its report day, and the day of the transaction
      it reports (looked up in silver), whose label the report changes.
    Later days are all in the window: a change on day d only changes features of days >= d.
    Empty (null) before anything was loaded.
-#}
{% macro data_tests_window_start() -%}
    {%- set transactions = data_tests_window_relation('stg_landing__transactions') -%}
    {%- set reports = data_tests_window_relation('stg_landing__fraud_reports') -%}
    {%- set silver = data_tests_window_relation('int_transactions_deduplicated') -%}
    {%- set latest -%}
        (
            select max(loads.loaded_at) from (
                select max(loaded_tx._loaded_at) as loaded_at from {{ transactions }} as loaded_tx
                union all
                select max(loaded_rep._loaded_at) as loaded_at from {{ reports }} as loaded_rep
            ) as loads
        )
    {%- endset -%}
    (
        select min(changed.changed_day) from (
            select least(tx._landed_date, {{ try_cast('tx.tx_datetime', 'date') }}) as changed_day
            from {{ transactions }} as tx
            where tx._loaded_at = {{ latest }}
            union all
            select least(rep._landed_date, {{ try_cast('rep.reported_at', 'date') }}) as changed_day
            from {{ reports }} as rep
            where rep._loaded_at = {{ latest }}
            union all
            select reported.tx_date as changed_day
            from {{ silver }} as reported
            inner join {{ reports }} as rep
                on reported.transaction_id = {{ try_cast('rep.transaction_id', 'bigint') }}
            where rep._loaded_at = {{ latest }}
        ) as changed
    )
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
    data_tests_window_condition(day_column, days_before=0): in scope 'latest_load', a condition
    that keeps the rows of the window (widened by days_before days, for a test that needs the
    history before it) and the rows without a day (quarantined rows whose landed day did not
    parse: few, and always tested); 'true' (every row) in scope 'all'.
-#}
{% macro data_tests_window_condition(day_column, days_before=0) -%}
    {#- (at parse time the graph is empty: what is rendered then is never run) -#}
    {%- if execute and data_tests_latest_load_only() -%}
        {%- set start = data_tests_window_start() -%}
        {%- if days_before -%}
            {#- `- interval 'n' day`: DuckDB, Spark and Databricks alike, and null stays null
                (dbt.dateadd asks Databricks for its runtime's capabilities) -#}
            {%- set start = 'cast(' ~ start ~ " - interval '" ~ days_before ~ "' day as date)" -%}
        {%- endif -%}
        {{ return('(' ~ day_column ~ ' >= ' ~ start ~ ' or ' ~ day_column ~ ' is null)') }}
    {%- endif -%}
    {{ return('true') }}
{%- endmacro %}

{#- The relation of a model of this project, by name (tests cannot ref() at run time). -#}
{% macro data_tests_window_relation(name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
