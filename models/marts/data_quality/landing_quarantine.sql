-- The quarantined rows of both feeds' verdicts, with their reason's description. A filter of
-- the verdicts (a view where they are incremental, see macros/landing_filter_config.sql).
{{ config(**landing_filter_config()) }}

with

transactions as (

    select * from {{ ref('int_transactions_validated') }}

),

fraud_reports as (

    select * from {{ ref('int_fraud_reports_validated') }}

),

reasons as (

    select * from {{ ref('quarantine_reasons') }}

),

quarantined_transactions as (

    select
        'transactions' as feed,
        transactions.landed_transaction_id as transaction_id,
        transactions.quarantine_reason as reason,
        transactions.landed_tx_datetime as tx_datetime,
        transactions.landed_customer_id as customer_id,
        transactions.landed_terminal_id as terminal_id,
        transactions.landed_tx_amount as tx_amount,
        cast(null as string) as reported_at,
        cast(null as string) as fraud_scenario,
        transactions._source_file,
        transactions._landed_date,
        transactions._loaded_at

    from transactions
    where transactions.landing_outcome = 'quarantined'

),

quarantined_fraud_reports as (

    select
        'fraud_reports' as feed,
        fraud_reports.landed_transaction_id as transaction_id,
        fraud_reports.quarantine_reason as reason,
        cast(null as string) as tx_datetime,
        cast(null as string) as customer_id,
        cast(null as string) as terminal_id,
        cast(null as string) as tx_amount,
        fraud_reports.landed_reported_at as reported_at,
        fraud_reports.landed_fraud_scenario as fraud_scenario,
        fraud_reports._source_file,
        fraud_reports._landed_date,
        fraud_reports._loaded_at

    from fraud_reports
    where fraud_reports.landing_outcome = 'quarantined'

),

quarantined as (

    select * from quarantined_transactions
    union all
    select * from quarantined_fraud_reports

),

final as (

    select
        -- ids
        quarantined.feed,
        quarantined.transaction_id,

        -- why
        quarantined.reason,
        reasons.description as reason_description,

        -- the row as landed
        quarantined.tx_datetime,
        quarantined.customer_id,
        quarantined.terminal_id,
        quarantined.tx_amount,
        quarantined.reported_at,
        quarantined.fraud_scenario,

        -- load metadata
        quarantined._source_file,
        quarantined._landed_date,
        quarantined._loaded_at

    from quarantined
    left join reasons
        on quarantined.reason = reasons.reason

)

select * from final
