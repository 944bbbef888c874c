{#-
    transaction_features_retractions(silver): the post-hook of an incremental run of
    gold.transaction_features (nothing on a full build): delete the rows whose transaction is no
    longer in `silver` (int_transactions_deduplicated), i.e. a later conflicting copy
    quarantined it. The model itself recomputes the rows whose windows held it.

    After the upsert the table holds every silver transaction, so a day can hold a retracted row
    only if it differs from silver's (changed_tx_days: a day silver lacks, or another count or
    sum of ids): the anti-join reads those days only (a grouped pass instead of a join of the
    whole table; 0.1 s instead of 0.2 s at default size).
-#}
{% macro transaction_features_retractions(silver) -%}
    {%- if not is_incremental() -%}
        {{ return('') }}
    {%- endif %}
    delete from {{ this }}
    where
        tx_date in (
            {{ changed_tx_days(this, silver) | indent(12) }}
        )
        and transaction_id not in (
            select silver.transaction_id
            from {{ silver }} as silver
            where silver.transaction_id is not null
        )
{%- endmacro %}
