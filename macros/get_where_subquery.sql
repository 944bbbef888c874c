{#-
    get_where_subquery(relation): what a generic data test reads as its `model`. Overrides
    dbt's macro of the same name (the documented way to extend the `where` config): the test's
    own `where` config as dbt applies it, and, in scope data_tests_scope = 'latest_load', the
    window of days the latest load can have changed (macros/data_tests_window.sql) on the
    tested model's day column(s) (its meta data_tests_window). Models without one are read whole.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- if data_tests_latest_load_only() -%}
        {%- set attached = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
        {%- set day_columns = attached.config.meta.get('data_tests_window') if attached else none -%}
        {%- if day_columns -%}
            {%- do conditions.append(data_tests_window_condition(day_columns)) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
