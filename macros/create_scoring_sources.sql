{#-
    create_scoring_sources(): the project's on-run-start hook. The `scoring` source tables are
    written by `ml` (ml score, ml promote), so on a fresh warehouse they do not exist and every
    model reading them would fail. This creates each missing one empty, with the columns and
    types of the var `scoring_tables` (ml passes it from ml/platform/tables.py; dbt_project.yml
    holds the same default, checked by tests/platform/test_config_surface.py). Existing tables
    are left as they are. Renders the SQL the hook runs.
-#}
{% macro create_scoring_sources() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set statements = [] -%}
    {%- set columns_of = var('scoring_tables') -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == 'scoring' and node.name in columns_of -%}
            {%- set relation = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.identifier
            ) -%}
            {%- do statements.append(
                adapter.dispatch('create_scoring_source')(relation, columns_of[node.name])
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements | join(';\n')) }}
{% endmacro %}

{% macro default__create_scoring_source(relation, columns) -%}
    {%- set schema_relation = api.Relation.create(database=relation.database, schema=relation.schema) -%}
    create schema if not exists {{ schema_relation }};
    create table if not exists {{ relation }} (
        {%- for name, type in columns.items() %}
        {{ name }} {{ type }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{% macro spark__create_scoring_source(relation, columns) -%}
    {{ fraudops_scoring_source_using(relation, columns, 'parquet') }}
{%- endmacro %}

{% macro databricks__create_scoring_source(relation, columns) -%}
    {{ fraudops_scoring_source_using(relation, columns, 'delta') }}
{%- endmacro %}

{% macro fraudops_scoring_source_using(relation, columns, file_format) -%}
    {%- set schema_relation = api.Relation.create(database=relation.database, schema=relation.schema) -%}
    create schema if not exists {{ schema_relation }};
    create table if not exists {{ relation }} (
        {%- for name, type in columns.items() %}
        {{ name }} {{ type }}{{ "," if not loop.last }}
        {%- endfor %}
    ) using {{ file_format }}
{%- endmacro %}
