-- Every transaction day with scored transactions has a full queue: var('alert_top_k') alerts,
-- or all of the day's scored transactions when there are fewer.
-- Returns one row per day whose queue has another size.

with

scored_per_day as (

    select
        features.tx_date,
        count(distinct features.transaction_id) as n_scored
    from {{ source('scoring', 'predictions') }} as predictions
    inner join {{ ref('transaction_features') }} as features
        on predictions.transaction_id = features.transaction_id
    group by features.tx_date

),

alerts_per_day as (

    select
        alert_date,
        count(*) as n_alerts
    from {{ ref('fraud_alerts') }}
    group by alert_date

)

select
    scored_per_day.tx_date,
    scored_per_day.n_scored,
    coalesce(alerts_per_day.n_alerts, 0) as n_alerts
from scored_per_day
left join alerts_per_day
    on scored_per_day.tx_date = alerts_per_day.alert_date
where
    coalesce(alerts_per_day.n_alerts, 0)
    != least(scored_per_day.n_scored, {{ var('alert_top_k') | int }})
