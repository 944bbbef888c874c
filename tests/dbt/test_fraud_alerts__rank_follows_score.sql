-- Each day's alert queue is in score order: the alert ranked r has a score at least as high
-- as the one ranked r + 1, and ranks run 1, 2, 3, ... without gaps.
-- Returns one row per alert that breaks the order.

with

alerts as (

    select
        alert_date,
        alert_rank,
        transaction_id,
        score,
        lead(score) over (partition by alert_date order by alert_rank) as next_score,
        row_number() over (partition by alert_date order by alert_rank) as expected_rank
    from {{ ref('fraud_alerts') }}

)

select *
from alerts
where
    next_score > score
    or alert_rank != expected_rank
