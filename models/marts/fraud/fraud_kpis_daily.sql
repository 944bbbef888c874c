-- Daily fraud KPIs for the BI dashboard. One row per transaction day. Frauds are those
-- reported so far (as of this build): recent days fill in as their reports land.

with

transactions as (

    select * from {{ ref('int_transactions_deduplicated') }}

),

fraud_reports as (

    select * from {{ ref('int_fraud_reports_deduplicated') }}

),

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
        fraud_reports.reported_epoch_s - transactions.tx_epoch_s as report_delay_s

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
        avg(labelled.report_delay_s) / 86400.0 as mean_report_delay_days

    from labelled
    group by labelled.tx_date

),

final as (

    select
        -- day
        daily.tx_date,

        -- volume
        daily.nb_transactions,
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
        daily.mean_report_delay_days

    from daily

)

select * from final
