{#-
    changed_tx_days(relation_a, relation_b): the SELECT of the tx_date values whose transactions
    differ between two relations with tx_date and transaction_id columns: a day held by one side
    only, or whose count or sum of transaction ids differs. One grouped pass over both sides
    (each row counts +1 on side a, -1 on side b).

    gold.transaction_features uses it twice: its incremental SELECT (silver against the table:
    the days where the table can miss or hold a transaction other than silver's) and its
    retraction post-hook (the days that can hold a retracted row).
-#}
{% macro changed_tx_days(relation_a, relation_b) -%}
    select sides.tx_date

    from (
        select
            side_a.tx_date,
            side_a.transaction_id,
            1 as side
        from {{ relation_a }} as side_a

        union all

        select
            side_b.tx_date,
            side_b.transaction_id,
            -1 as side
        from {{ relation_b }} as side_b
    ) as sides

    group by sides.tx_date
    having
        sum(sides.side) <> 0
        or sum(sides.side * sides.transaction_id) <> 0
{%- endmacro %}
