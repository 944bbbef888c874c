{#-
    The landing contract of one landing table, from its source definition
    (models/staging/landing/_landing__sources.yml): where its files are and what they hold.
    Returns a dict:
      location          '<var landing_root>/<identifier>', the feed's folder
      partition_column  the hive partition key (source table meta.partition_column)
      file_columns      the declared columns that live in the files (all but the partition key)
    Used by read_landing and read_landing_check_files, so the contract is declared once.
-#}
{% macro read_landing_contract(relation) %}
    {%- if not execute -%}
        {#- parsing: the graph is not built yet and nothing is run -#}
        {{ return({
            'location': var('landing_root').rstrip('/') ~ '/' ~ relation.identifier,
            'partition_column': 'partition',
            'file_columns': [],
        }) }}
    {%- endif -%}
    {%- set matches = [] -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.identifier == relation.identifier and node.schema == relation.schema -%}
            {%- do matches.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if matches | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            "read_landing: " ~ relation.schema ~ "." ~ relation.identifier
            ~ " is not one landing source table; declare it in models/staging/landing/_landing__sources.yml"
        ) }}
    {%- endif -%}
    {%- set node = matches[0] -%}
    {%- set meta = node.config.get('meta', {}) or node.meta -%}
    {%- set partition_column = meta.get('partition_column') or node.meta.get('partition_column') -%}
    {%- if not partition_column -%}
        {{ exceptions.raise_compiler_error(
            "read_landing: source table " ~ node.source_name ~ "." ~ node.name
            ~ " needs meta.partition_column (its hive partition key)"
        ) }}
    {%- endif -%}
    {%- set file_columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- if column.name != partition_column -%}
            {%- do file_columns.append(column.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return({
        'location': var('landing_root').rstrip('/') ~ '/' ~ node.identifier,
        'partition_column': partition_column,
        'file_columns': file_columns,
    }) }}
{% endmacro %}
