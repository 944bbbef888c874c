-- Every bronze transaction row, parsed, with its verdict: kept (the one silver row of its
-- transaction), exact_duplicate (an identical copy of a kept row) or quarantined (with the
-- first rule it breaks, in the order of the case expression below).
--
-- Incremental (where the adapter can replace all rows of a key, see
-- macros/landing_verdicts_config.sql): a verdict depends only on the bronze rows of the same
-- transaction_id, so a run judges the bronze rows of files not judged yet together with every
-- row judged before that shares a transaction_id with them (re-read from this table, which
-- keeps each row as landed), and replaces all rows of those ids. So a transaction landing again
-- with other content quarantines the copy kept before too (conflicting_duplicate), an identical
-- copy becomes an exact duplicate of the kept one, and rows without a parseable id (judged
-- alone) are only ever new. tests/test_silver_incremental.py checks a day-by-day build equals
-- a full refresh.
-- sqlfluff:indentation:template_blocks_indent:false
{{ config(
    unique_key='transaction_id',
    on_schema_change='fail',
    **landing_verdicts_config()
) }}

with

{% if is_incremental() %}
-- bronze rows of the files not judged yet (a file lands in bronze whole, in one run); this
-- table is read where needed rather than in a shared CTE, which DuckDB would materialize whole
new_landed as (

    select
        landed.transaction_id,
        landed.customer_id,
        landed.terminal_id,
        landed.tx_amount,
        landed.tx_datetime,
        landed._source_file,
        landed._landed_date,
        landed._loaded_at

    from {{ ref('stg_landing__transactions') }} as landed
    where landed._source_file not in (
        select distinct judged._source_file
        from {{ this }} as judged
        where judged._source_file is not null
    )

),

new_ids as (

    select distinct {{ try_cast('new_landed.transaction_id', 'bigint') }} as transaction_id
    from new_landed

),

landed as (

    select * from new_landed

    union all

    -- the rows judged before of the same transactions, as landed
    select
        judged_before.landed_transaction_id as transaction_id,
        judged_before.landed_customer_id as customer_id,
        judged_before.landed_terminal_id as terminal_id,
        judged_before.landed_tx_amount as tx_amount,
        judged_before.landed_tx_datetime as tx_datetime,
        judged_before._source_file,
        judged_before._landed_date,
        judged_before._loaded_at

    from {{ this }} as judged_before
    inner join new_ids
        on judged_before.transaction_id = new_ids.transaction_id

),
{% else %}
-- read where needed, not materialized whole (DuckDB would: parsed rows feed two parts below)
landed as {{ cte_not_materialized() }} (

    select * from {{ ref('stg_landing__transactions') }}

),
{% endif %}

parsed as (

    select
        -- as landed
        landed.transaction_id as landed_transaction_id,
        landed.tx_datetime as landed_tx_datetime,
        landed.customer_id as landed_customer_id,
        landed.terminal_id as landed_terminal_id,
        landed.tx_amount as landed_tx_amount,

        -- ids
        {{ try_cast('landed.transaction_id', 'bigint') }} as transaction_id,
        {{ try_cast('landed.customer_id', 'bigint') }} as customer_id,
        {{ try_cast('landed.terminal_id', 'bigint') }} as terminal_id,

        -- amounts
        {{ try_cast('landed.tx_amount', 'double') }} as tx_amount,

        -- timestamps
        {{ try_cast('landed.tx_datetime', 'timestamp') }} as tx_datetime,

        -- load metadata
        landed._source_file,
        landed._landed_date,
        landed._loaded_at

    from landed

),

checked as (

    select
        parsed.*,
        case
            when nullif(trim(parsed.landed_transaction_id), '') is null
                then 'missing_transaction_id'
            when
                parsed.transaction_id is null
                or (parsed.landed_tx_datetime is not null and parsed.tx_datetime is null)
                or (parsed.landed_customer_id is not null and parsed.customer_id is null)
                or (parsed.landed_terminal_id is not null and parsed.terminal_id is null)
                or (parsed.landed_tx_amount is not null and parsed.tx_amount is null)
                then 'unparseable_value'
            when
                parsed.tx_datetime is null
                or parsed.customer_id is null
                or parsed.terminal_id is null
                or parsed.tx_amount is null
                then 'missing_value'
            when parsed._landed_date is null
                then 'invalid_landed_date'
            -- zero is valid: card networks carry zero-amount authorisations (card checks)
            when parsed.tx_amount < 0
                then 'negative_amount'
            -- NaN compares above every number, so NaN and infinity are absurd too
            when parsed.tx_amount > {{ var('max_tx_amount') }}
                then 'absurd_amount'
            when
                parsed.tx_datetime < cast('{{ var("min_event_date") }}' as timestamp)
                or parsed.tx_datetime
                > parsed._loaded_at + interval '{{ var("max_days_ahead_of_load") }}' day
                then 'timestamp_out_of_range'
            when cast(parsed.tx_datetime as date) > parsed._landed_date
                then 'timestamp_after_landed_date'
        end as row_reason

    from parsed

),

-- the verdicts: conflicting_duplicate, then kept or exact_duplicate (macros/landing_verdicts.sql)
{{ landing_verdicts('checked', ['tx_datetime', 'customer_id', 'terminal_id', 'tx_amount']) }},

final as (

    select
        -- ids
        verdicts.transaction_id,
        verdicts.customer_id,
        verdicts.terminal_id,

        -- amounts
        verdicts.tx_amount,

        -- timestamps
        verdicts.tx_datetime,

        -- as landed
        verdicts.landed_transaction_id,
        verdicts.landed_tx_datetime,
        verdicts.landed_customer_id,
        verdicts.landed_terminal_id,
        verdicts.landed_tx_amount,

        -- verdict
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
