-- Daily fraud KPIs for the BI dashboard. One row per transaction day. Frauds are those
-- reported so far (as of this build): recent days fill in as their reports land.
--
-- Incremental (macros/fraud_kpis_daily_config.sql): a day's KPIs change only when a bronze row
-- of one of its transactions or of their reports lands, since verdicts change only then.
-- _loaded_at, the latest load among the rows a day counts, makes the table its own watermark:
-- a run recomputes the days of every transaction id with a row loaded after it (each day one
-- of its rows falls on: a conflicting copy on another day retracts the kept one) and the days
-- of the silver transactions whose reports have such a row, and replaces those days by
-- tx_date. This relies on bronze load times (dbt's run start, to the second) increasing from
-- one dbt invocation to the next; rows loaded by the run that built the table are not newer
-- than it, so a step after a full build recomputes only the new day's days. A day left
-- without transactions is written with nb_transactions = 0 and deleted by the post-hook (the
-- full refresh has no row for it).
-- sqlfluff:indentation:template_blocks_indent:false
-- the verdicts, read on incremental runs only:
-- depends_on: {{ ref('int_transactions_validated') }}
-- depends_on: {{ ref('int_fraud_reports_validated') }}
{{ config(
    unique_key='tx_date',
    on_schema_change='fail',
    post_hook="{% if is_incremental() %}delete from {{ this }} where nb_transactions = 0{% endif %}",
    **fraud_kpis_daily_config()
) }}

with

fraud_reports as (

    select * from {{ ref('int_fraud_reports_deduplicated') }}

),

{% if is_incremental() %}
watermark as (

    select max(built._loaded_at) as loaded_at
    from {{ this }} as built

),

validated_transactions as (

    select * from {{ ref('int_transactions_validated') }}

),

validated_fraud_reports as (

    select * from {{ ref('int_fraud_reports_validated') }}

),

-- transaction ids with a bronze row loaded since the last build (all rows when it was empty)
changed_transaction_ids as (

    select distinct validated_transactions.transaction_id

    from validated_transactions
    cross join watermark
    where
        validated_transactions.transaction_id is not null
        and (
            watermark.loaded_at is null
            or validated_transactions._loaded_at > watermark.loaded_at
        )

),

changed_days as (

    -- every day a row of those transactions falls on, kept in silver or not
    select cast(validated_transactions.tx_datetime as date) as tx_date

    from validated_transactions
    inner join changed_transaction_ids
        on validated_transactions.transaction_id = changed_transaction_ids.transaction_id
    where validated_transactions.tx_datetime is not null

    union distinct

    -- the days of the silver transactions whose reports have a row loaded since
    select silver_transactions.tx_date

    from validated_fraud_reports
    cross join watermark
    inner join {{ ref('int_transactions_deduplicated') }} as silver_transactions
        on validated_fraud_reports.transaction_id = silver_transactions.transaction_id
    where
        watermark.loaded_at is null
        or validated_fraud_reports._loaded_at > watermark.loaded_at

),

transactions as (

    select silver_transactions.*

    from {{ ref('int_transactions_deduplicated') }} as silver_transactions
    inner join changed_days
        on silver_transactions.tx_date = changed_days.tx_date

),
{% else %}
transactions as (

    select * from {{ ref('int_transactions_deduplicated') }}

),
{% endif %}

labelled as (

    select
        -- ids
        transactions.transaction_id,
        transactions.customer_id,
        transactions.terminal_id,

        -- amounts
        transactions.tx_amount,

        -- timestamps
        transactions.tx_date,

        -- labels
        case when fraud_reports.transaction_id is null then 0 else 1 end as is_fraud,
        fraud_reports.reported_epoch_s - transactions.tx_epoch_s as report_delay_s,

        -- load metadata
        greatest(transactions._loaded_at, coalesce(fraud_reports._loaded_at, transactions._loaded_at)) as _loaded_at

    from transactions
    left join fraud_reports
        on transactions.transaction_id = fraud_reports.transaction_id

),

daily as (

    select
        labelled.tx_date,
        count(*) as nb_transactions,
        sum(labelled.tx_amount) as amount,
        count(distinct labelled.customer_id) as nb_active_cards,
        count(distinct labelled.terminal_id) as nb_active_terminals,
        sum(labelled.is_fraud) as nb_frauds,
        coalesce(sum(case when labelled.is_fraud = 1 then labelled.tx_amount end), 0.0) as amount_lost,
        count(distinct case when labelled.is_fraud = 1 then labelled.customer_id end)
            as nb_compromised_cards,
        count(distinct case when labelled.is_fraud = 1 then labelled.terminal_id end)
            as nb_terminals_with_fraud,
        avg(labelled.report_delay_s) / 86400.0 as mean_report_delay_days,
        max(labelled._loaded_at) as _loaded_at

    from labelled
    group by labelled.tx_date

),

-- the days to write: on an incremental run every changed day, also one left without transactions
days as (

    {% if is_incremental() %}
    select changed_days.tx_date from changed_days
    {% else %}
    select daily.tx_date from daily
    {% endif %}
),

final as (

    select
        -- day
        days.tx_date,

        -- volume (0 transactions: a day that no longer has any, deleted by the post-hook)
        coalesce(daily.nb_transactions, 0) as nb_transactions,
        daily.amount,
        daily.nb_active_cards,
        daily.nb_active_terminals,

        -- fraud
        daily.nb_frauds,
        cast(daily.nb_frauds as double) / daily.nb_transactions as fraud_rate,
        daily.amount_lost,
        daily.amount_lost / daily.amount as amount_lost_rate,
        daily.nb_compromised_cards,
        daily.nb_terminals_with_fraud,
        daily.mean_report_delay_days,

        -- load metadata
        daily._loaded_at

    from days
    left join daily
        on days.tx_date = daily.tx_date

)

select * from final
