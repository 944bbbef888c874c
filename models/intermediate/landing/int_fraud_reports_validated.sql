-- Every bronze fraud-report row, parsed, with its verdict: kept (the one silver row of its
-- report), exact_duplicate (an identical copy of a kept row) or quarantined (with the first
-- rule it breaks, in the order of the case expression below). A report is checked against
-- its transaction in silver when that has arrived; otherwise it waits for it (kept).
--
-- Incremental like int_transactions_validated (macros/landing_verdicts_config.sql): a verdict
-- depends on the bronze rows of the same transaction_id and on whether that transaction is in
-- silver (and when it happened). A transaction kept in silver never changes content (another
-- content quarantines every copy, for good), so the reports to re-judge are those of the ids
-- of new bronze rows and those whose transaction entered or left silver since they were judged
-- (has_transaction differs from silver now); a run re-judges every row of those ids, the rows
-- judged before being re-read from this table, and replaces them.
-- sqlfluff:indentation:template_blocks_indent:false
{{ config(
    unique_key='transaction_id',
    on_schema_change='fail',
    **landing_verdicts_config()
) }}

with

transactions as (

    select * from {{ ref('int_transactions_deduplicated') }}

),

{% if is_incremental() %}
-- bronze rows of the files not judged yet (a file lands in bronze whole, in one run); this
-- table is read where needed rather than in a shared CTE, which DuckDB would materialize whole
new_landed as (

    select
        landed.transaction_id,
        landed.fraud_scenario,
        landed.reported_at,
        landed._source_file,
        landed._landed_date,
        landed._loaded_at

    from {{ ref('stg_landing__fraud_reports') }} as landed
    where landed._source_file not in (
        select distinct judged._source_file
        from {{ this }} as judged
        where judged._source_file is not null
    )

),

-- reports whose transaction entered silver (landed) or left it (conflicting copy) since
rematched_ids as (

    select distinct judged_before.transaction_id

    from {{ this }} as judged_before
    left join transactions
        on judged_before.transaction_id = transactions.transaction_id
    where
        judged_before.transaction_id is not null
        and judged_before.has_transaction <> (transactions.transaction_id is not null)

),

rejudged_ids as (

    select {{ try_cast('new_landed.transaction_id', 'bigint') }} as transaction_id
    from new_landed

    union distinct

    select rematched_ids.transaction_id
    from rematched_ids

),

landed as (

    select * from new_landed

    union all

    -- the rows judged before of the same reports, as landed
    select
        judged_before.landed_transaction_id as transaction_id,
        judged_before.landed_fraud_scenario as fraud_scenario,
        judged_before.landed_reported_at as reported_at,
        judged_before._source_file,
        judged_before._landed_date,
        judged_before._loaded_at

    from {{ this }} as judged_before
    inner join rejudged_ids
        on judged_before.transaction_id = rejudged_ids.transaction_id

),
{% else %}
landed as (

    select * from {{ ref('stg_landing__fraud_reports') }}

),
{% endif %}

parsed as (

    select
        -- as landed
        landed.transaction_id as landed_transaction_id,
        landed.reported_at as landed_reported_at,
        landed.fraud_scenario as landed_fraud_scenario,

        -- ids
        {{ try_cast('landed.transaction_id', 'bigint') }} as transaction_id,

        -- labels
        {{ try_cast('landed.fraud_scenario', 'integer') }} as fraud_scenario,

        -- timestamps
        {{ try_cast('landed.reported_at', 'timestamp') }} as reported_at,

        -- load metadata
        landed._source_file,
        landed._landed_date,
        landed._loaded_at

    from landed

),

checked as (

    select
        parsed.*,
        transactions.transaction_id is not null as has_transaction,
        case
            when nullif(trim(parsed.landed_transaction_id), '') is null
                then 'missing_transaction_id'
            when
                parsed.transaction_id is null
                or (parsed.landed_reported_at is not null and parsed.reported_at is null)
                or (parsed.landed_fraud_scenario is not null and parsed.fraud_scenario is null)
                then 'unparseable_value'
            when parsed.reported_at is null or parsed.fraud_scenario is null
                then 'missing_value'
            when parsed._landed_date is null
                then 'invalid_landed_date'
            when
                parsed.reported_at < cast('{{ var("min_event_date") }}' as timestamp)
                or parsed.reported_at
                > parsed._loaded_at + interval '{{ var("max_days_ahead_of_load") }}' day
                then 'timestamp_out_of_range'
            when cast(parsed.reported_at as date) > parsed._landed_date
                then 'timestamp_after_landed_date'
            when parsed.reported_at < transactions.tx_datetime
                then 'reported_before_transaction'
        end as row_reason

    from parsed
    left join transactions
        on parsed.transaction_id = transactions.transaction_id

),

-- the verdicts: conflicting_duplicate, then kept or exact_duplicate (macros/landing_verdicts.sql)
{{ landing_verdicts('checked', ['reported_at', 'fraud_scenario']) }},

final as (

    select
        -- ids
        verdicts.transaction_id,

        -- labels
        verdicts.fraud_scenario,

        -- timestamps
        verdicts.reported_at,

        -- as landed
        verdicts.landed_transaction_id,
        verdicts.landed_reported_at,
        verdicts.landed_fraud_scenario,

        -- verdict
        verdicts.has_transaction,
        verdicts.quarantine_reason,
        verdicts.landing_outcome,
        verdicts.kept_source_file,

        -- load metadata
        verdicts._source_file,
        verdicts._landed_date,
        verdicts._loaded_at

    from verdicts

)

select * from final
