{#- True for the predictions of an external model (the incumbent's, imported by `ml shadow
    import`): its name is <source>:<deployment> (ml.operations.shadow.EXTERNAL_MARK), which a
    registry model name never is. -#}
{% macro is_external_model(column) -%}
    ({{ column }} like '%:%')
{%- endmacro %}
