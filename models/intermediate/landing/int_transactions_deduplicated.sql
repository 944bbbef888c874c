-- Silver transactions: the kept rows of int_transactions_validated. A filter of the verdicts
-- (a view where they are incremental, see macros/landing_filter_config.sql), so it changes
-- exactly when they do.
{{ config(**landing_filter_config()) }}

with

validated as (

    select * from {{ ref('int_transactions_validated') }}

),

final as (

    select
        -- ids
        validated.transaction_id,

        -- timestamps
        validated.tx_datetime,
        {{ epoch_seconds('validated.tx_datetime') }} as tx_epoch_s,
        cast(validated.tx_datetime as date) as tx_date,

        -- ids
        validated.customer_id,
        validated.terminal_id,

        -- amounts
        validated.tx_amount,

        -- load metadata
        validated._source_file,
        validated._landed_date,
        validated._loaded_at

    from validated
    where validated.landing_outcome = 'kept'

)

select * from final
