{#-
    Generic test: `expression` holds on every row (rows where it is false or null fail).
    On a column, the column name is prefixed, e.g. `expression: "between 0 and 1"`.
    Use the test's `where` config to restrict the rows checked (e.g. non-null metrics).
-#}
{% test expression_is_true(model, expression, column_name=none) %}

with

checked as (

    select *
    from {{ model }}

)

select *
from checked
where not coalesce(({{ column_name ~ " " if column_name }}{{ expression }}), false)

{% endtest %}
