-- Silver fraud reports: the kept rows of int_fraud_reports_validated. A filter of the verdicts
-- (a view where they are incremental, see macros/landing_filter_config.sql), so it changes
-- exactly when they do.
{{ config(**landing_filter_config()) }}

with

validated as (

    select * from {{ ref('int_fraud_reports_validated') }}

),

final as (

    select
        -- ids
        validated.transaction_id,

        -- timestamps
        validated.reported_at,
        {{ epoch_seconds('validated.reported_at') }} as reported_epoch_s,
        cast(validated.reported_at as date) as report_date,

        -- labels
        validated.fraud_scenario,
        case
            when validated.has_transaction then 'matched'
            else 'awaiting_transaction'
        end as match_status,

        -- load metadata
        validated._source_file,
        validated._landed_date,
        validated._loaded_at

    from validated
    where validated.landing_outcome = 'kept'

)

select * from final
