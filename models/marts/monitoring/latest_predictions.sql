{#-
    The score that counts for each transaction: its most recent prediction (latest scored_at,
    then the highest model version). A transaction re-scored by a new champion keeps one row.
    gold.fraud_alerts ranks these, and `ml report` reads them: one definition of "latest".
    Only our models' predictions count: an external model's (the incumbent's, imported by
    `ml shadow import` for gold.shadow_comparison_daily) never enters the alert queue.

    scoring.* is written by `ml`, not by a dbt staging layer, so the source is read here
    directly (one `predictions` CTE, as a staging model would).
-#}

{{ config(materialized='view') }}

with

predictions as (

    select * from {{ source('scoring', 'predictions') }}
    where not {{ is_external_model('model_name') }}

),

ranked as (

    select
        predictions.*,
        row_number() over (
            partition by predictions.transaction_id
            -- numeric-aware version order for "1" < "2" < "10" without a dialect-specific cast
            order by
                predictions.scored_at desc,
                length(predictions.model_version) desc,
                predictions.model_version desc
        ) as version_recency
    from predictions

),

latest as (

    select
        transaction_id,
        score,
        is_alert,
        model_name,
        model_version,
        scored_at
    from ranked
    where version_recency = 1

)

select * from latest
