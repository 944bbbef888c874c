-- model_performance_daily reconciles with its inputs: for every (day, model version) it
-- evaluates, n_transactions equals the scored transactions of that day and version in
-- scoring.predictions joined to gold.transaction_features, and n_alerts their is_alert flags.
-- n_frauds is at most today's frauds among them: fraud reports are only ever added, and an
-- incremental row keeps the labels it was computed with.
-- Returns one row per (day, version) whose counts differ.

with

scored as (

    select
        features.tx_date,
        predictions.model_name,
        predictions.model_version,
        count(*) as n_transactions,
        sum(features.tx_fraud) as n_frauds,
        sum(case when predictions.is_alert then 1 else 0 end) as n_alerts
    from {{ source('scoring', 'predictions') }} as predictions
    inner join {{ ref('transaction_features') }} as features
        on predictions.transaction_id = features.transaction_id
    group by
        features.tx_date,
        predictions.model_name,
        predictions.model_version

),

performance as (

    select
        tx_date,
        model_name,
        model_version,
        n_transactions,
        n_frauds,
        n_alerts
    from {{ ref('model_performance_daily') }}

)

select
    performance.tx_date,
    performance.model_name,
    performance.model_version,
    performance.n_transactions,
    scored.n_transactions as n_scored,
    performance.n_frauds,
    scored.n_frauds as n_scored_frauds,
    performance.n_alerts,
    scored.n_alerts as n_scored_alerts
from performance
left join scored
    on
        performance.tx_date = scored.tx_date
        and performance.model_name = scored.model_name
        and performance.model_version = scored.model_version
where
    scored.n_transactions is null
    or performance.n_transactions != scored.n_transactions
    or performance.n_frauds > scored.n_frauds
    or performance.n_alerts != scored.n_alerts
