-- The exact duplicates of both feeds' verdicts. A filter of the verdicts (a view where they
-- are incremental, see macros/landing_filter_config.sql).
{{ config(**landing_filter_config()) }}

with

transactions as (

    select * from {{ ref('int_transactions_validated') }}

),

fraud_reports as (

    select * from {{ ref('int_fraud_reports_validated') }}

),

duplicates as (

    select
        'transactions' as feed,
        transactions.transaction_id,
        transactions.kept_source_file,
        transactions._source_file,
        transactions._landed_date,
        transactions._loaded_at

    from transactions
    where transactions.landing_outcome = 'exact_duplicate'

    union all

    select
        'fraud_reports' as feed,
        fraud_reports.transaction_id,
        fraud_reports.kept_source_file,
        fraud_reports._source_file,
        fraud_reports._landed_date,
        fraud_reports._loaded_at

    from fraud_reports
    where fraud_reports.landing_outcome = 'exact_duplicate'

)

select * from duplicates
