-- model_performance_daily only evaluates days whose labels are mature: each row's day is at
-- least var('label_maturity_days') before the latest transaction day known when it was
-- computed (labels_as_of), and labels_as_of is not later than the data. (date - integer
-- subtracts days in DuckDB and Spark SQL alike.)
-- Returns one row per row of the model that breaks this.

with

latest as (

    select max(tx_date) as last_tx_date
    from {{ ref('transaction_features') }}

),

performance as (

    select
        tx_date,
        model_name,
        model_version,
        labels_as_of
    from {{ ref('model_performance_daily') }}

)

select
    performance.tx_date,
    performance.model_name,
    performance.model_version,
    performance.labels_as_of,
    latest.last_tx_date
from performance
cross join latest
where
    performance.tx_date > performance.labels_as_of - {{ var('label_maturity_days') | int }}
    or performance.labels_as_of > latest.last_tx_date
