{#-
    create_scoring_sources(): the project's on-run-start hook. The `scoring` source tables are
    written by `ml` (ml score, ml promote), so on a fresh warehouse they do not exist and every
    model reading them would fail. This creates each missing one empty, with the columns and
    types of the var `scoring_tables` (ml passes it from ml/platform/tables.py; dbt_project.yml
    holds the same default, checked by tests/platform/test_config_surface.py). Existing tables
    are left as they are. Runs one statement at a time (a Databricks SQL warehouse takes no
    batches) and renders nothing; only for the commands that run models (build, run, test,
    seed, snapshot), so an offline `dbt compile` needs no connection.
-#}
{% macro create_scoring_sources() %}
    {#- only commands that run models need the tables (compile, docs, ls... may have no warehouse) -#}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'test', 'seed', 'snapshot') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set columns_of = var('scoring_tables') -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == 'scoring' and node.name in columns_of -%}
            {%- set relation = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.identifier
            ) -%}
            {%- do adapter.create_schema(relation) -%}
            {%- do run_query(adapter.dispatch('create_scoring_source')(relation, columns_of[node.name])) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}

{% macro default__create_scoring_source(relation, columns) -%}
    {{ return(fraudops_scoring_source_ddl(relation, columns, '')) }}
{%- endmacro %}

{% macro spark__create_scoring_source(relation, columns) -%}
    {{ return(fraudops_scoring_source_ddl(relation, columns, ' using parquet')) }}
{%- endmacro %}

{% macro databricks__create_scoring_source(relation, columns) -%}
    {{ return(fraudops_scoring_source_ddl(relation, columns, ' using delta')) }}
{%- endmacro %}

{% macro fraudops_scoring_source_ddl(relation, columns, using) -%}
    {%- set column_list = [] -%}
    {%- for name, type in columns.items() -%}
        {%- do column_list.append(name ~ ' ' ~ type) -%}
    {%- endfor -%}
    {{ return('create table if not exists ' ~ relation ~ ' (' ~ column_list | join(', ') ~ ')' ~ using) }}
{%- endmacro %}
