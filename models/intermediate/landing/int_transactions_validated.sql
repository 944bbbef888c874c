-- Every bronze transaction row, parsed, with its verdict: kept (the one silver row of its
-- transaction), exact_duplicate (an identical copy of a kept row) or quarantined (with the
-- first rule it breaks, in the order of the case expression below).

with

landed as (

    select * from {{ ref('stg_landing__transactions') }}

),

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
            when parsed.tx_amount <= 0
                then 'non_positive_amount'
            -- NaN compares above every number, so NaN and infinity are absurd too
            when parsed.tx_amount > {{ var('max_tx_amount') }}
                then 'absurd_amount'
            when cast(parsed.tx_datetime as date) > parsed._landed_date
                then 'timestamp_after_landed_date'
        end as row_reason

    from parsed

),

-- transaction ids whose valid rows do not all carry the same content
versions as (

    select
        checked.transaction_id,
        (
            min(checked.tx_datetime) <> max(checked.tx_datetime)
            or min(checked.customer_id) <> max(checked.customer_id)
            or min(checked.terminal_id) <> max(checked.terminal_id)
            or min(checked.tx_amount) <> max(checked.tx_amount)
        ) as is_conflicting

    from checked
    where checked.row_reason is null
    group by checked.transaction_id

),

judged as (

    select
        checked.*,
        coalesce(
            checked.row_reason,
            case when versions.is_conflicting then 'conflicting_duplicate' end
        ) as quarantine_reason

    from checked
    left join versions
        on checked.transaction_id = versions.transaction_id

),

ranked as (

    select
        judged.*,
        -- the first landed copy of a valid transaction is kept
        row_number() over (
            partition by judged.transaction_id, judged.quarantine_reason
            order by judged._loaded_at, judged._landed_date, judged._source_file
        ) as landed_copy,
        first_value(judged._source_file) over (
            partition by judged.transaction_id, judged.quarantine_reason
            order by judged._loaded_at, judged._landed_date, judged._source_file
        ) as kept_source_file

    from judged

),

final as (

    select
        -- ids
        ranked.transaction_id,
        ranked.customer_id,
        ranked.terminal_id,

        -- amounts
        ranked.tx_amount,

        -- timestamps
        ranked.tx_datetime,

        -- as landed
        ranked.landed_transaction_id,
        ranked.landed_tx_datetime,
        ranked.landed_customer_id,
        ranked.landed_terminal_id,
        ranked.landed_tx_amount,

        -- verdict
        ranked.quarantine_reason,
        case
            when ranked.quarantine_reason is not null then 'quarantined'
            when ranked.landed_copy = 1 then 'kept'
            else 'exact_duplicate'
        end as landing_outcome,
        case when ranked.quarantine_reason is null then ranked.kept_source_file end as kept_source_file,

        -- load metadata
        ranked._source_file,
        ranked._landed_date,
        ranked._loaded_at

    from ranked

)

select * from final
