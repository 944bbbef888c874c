{#-
    Generic test: no two rows share the same values in all of `combination_of_columns`
    (a composite primary key). Fails with one row per duplicated key and its count.
    Portable SQL (group by / having), so it runs on DuckDB and Spark alike.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set key = combination_of_columns | join(', ') %}

with

keyed as (

    select
        {{ key }},
        count(*) as n_rows
    from {{ model }}
    group by {{ key }}

)

select *
from keyed
where n_rows > 1

{% endtest %}
