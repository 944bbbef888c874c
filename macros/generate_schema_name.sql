{#-
    Layer schemas are used as named (bronze, silver, gold, ...), not prefixed with the
    target schema: environments are isolated by database/catalog per target (local file,
    Databricks catalog per bundle target), which is the Unity Catalog convention.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
