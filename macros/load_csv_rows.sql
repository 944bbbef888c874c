{#-
    spark__load_csv_rows(model, agate_table): dbt-spark's seed loader, with the values written
    into the INSERT as escaped literals. dbt-spark's own version binds them, and its `session`
    connection method substitutes the bindings into the SQL text unescaped, so any seed value
    holding a quote (e.g. "folder's") breaks the statement. Same batches and casts as dbt-spark;
    dbt-databricks has its own loader (databricks__load_csv_rows) and is not affected.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set batch_size = get_batch_size() -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for col_name in agate_table.column_names -%}
        {%- do types.append(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) -%}
        {%- set rows = [] -%}
        {%- for row in chunk -%}
            {%- set values = [] -%}
            {%- for value in row -%}
                {%- if value is none -%}
                    {%- set literal = 'null' -%}
                {%- elif value is number and value is not sameas true and value is not sameas false -%}
                    {%- set literal = value | string -%}
                {%- else -%}
                    {%- set literal = "'" ~ (value | string | replace('\\', '\\\\') | replace("'", "\\'")) ~ "'" -%}
                {%- endif -%}
                {%- do values.append('cast(' ~ literal ~ ' as ' ~ types[loop.index0] ~ ')') -%}
            {%- endfor -%}
            {%- do rows.append('(' ~ values | join(', ') ~ ')') -%}
        {%- endfor -%}
        {%- set sql = 'insert into ' ~ this.render() ~ ' values ' ~ rows | join(', ') -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- do statements.append(sql) -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}
