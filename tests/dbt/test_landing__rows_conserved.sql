-- Conservation of landed rows, per feed: every bronze row ends up in exactly one place, so
--   bronze rows = silver rows + quarantined rows + exact duplicates.
-- Silver is int_<feed>_deduplicated, quarantine is gold landing_quarantine (one row per
-- quarantined landed row, with its reason) and exact duplicates are gold
-- landing_exact_duplicates (identical copies of a silver row, e.g. a re-delivered file).
-- Each row keeps its landed day wherever it ends up, so the balance holds day by day: in the
-- daily builds' scope it is checked over the days the latest load can have changed
-- (macros/data_tests_window.sql), on _landed_date.
-- Returns one row per feed whose counts do not balance.

with

bronze as (

    select
        'transactions' as feed,
        count(*) as n_rows
    from {{ ref('stg_landing__transactions') }}
    where {{ data_tests_window_condition('_landed_date') }}
    union all
    select
        'fraud_reports' as feed,
        count(*) as n_rows
    from {{ ref('stg_landing__fraud_reports') }}
    where {{ data_tests_window_condition('_landed_date') }}

),

silver as (

    select
        'transactions' as feed,
        count(*) as n_rows
    from {{ ref('int_transactions_deduplicated') }}
    where {{ data_tests_window_condition('_landed_date') }}
    union all
    select
        'fraud_reports' as feed,
        count(*) as n_rows
    from {{ ref('int_fraud_reports_deduplicated') }}
    where {{ data_tests_window_condition('_landed_date') }}

),

quarantined as (

    select
        quarantine.feed,
        count(*) as n_rows
    from {{ ref('landing_quarantine') }} as quarantine
    where {{ data_tests_window_condition('quarantine._landed_date') }}
    group by quarantine.feed

),

duplicates as (

    select
        duplicate.feed,
        count(*) as n_rows
    from {{ ref('landing_exact_duplicates') }} as duplicate
    where {{ data_tests_window_condition('duplicate._landed_date') }}
    group by duplicate.feed

),

balance as (

    select
        bronze.feed,
        bronze.n_rows as bronze_rows,
        silver.n_rows as silver_rows,
        coalesce(quarantined.n_rows, 0) as quarantined_rows,
        coalesce(duplicates.n_rows, 0) as duplicate_rows

    from bronze
    inner join silver
        on bronze.feed = silver.feed
    left join quarantined
        on bronze.feed = quarantined.feed
    left join duplicates
        on bronze.feed = duplicates.feed

)

select *
from balance
where bronze_rows <> silver_rows + quarantined_rows + duplicate_rows
