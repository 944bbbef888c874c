{#-
    The incumbent (an external model, imported by `ml shadow import`) beside each of our model
    versions, per mature day: their average precision and Card Precision@k (from
    gold.model_performance_daily, which measures every model name and version on matured
    labels) and the overlap of their alerts on the transactions both scored.
-#}

{{ config(materialized='table') }}

with

performance as (

    select * from {{ ref('model_performance_daily') }}

),

predictions as (

    select * from {{ source('scoring', 'predictions') }}

),

features as (

    select * from {{ ref('transaction_features') }}

),

incumbent as (

    select * from performance
    where {{ is_external_model('model_name') }}

),

ours as (

    select * from performance
    where not {{ is_external_model('model_name') }}

),

pairs as (

    select
        incumbent.tx_date,
        incumbent.model_name as incumbent_model_name,
        incumbent.model_version as incumbent_model_version,
        ours.model_name,
        ours.model_version,
        incumbent.n_frauds,
        incumbent.average_precision as incumbent_average_precision,
        ours.average_precision,
        incumbent.card_precision_k,
        incumbent.card_precision_at_k as incumbent_card_precision_at_k,
        ours.card_precision_at_k
    from incumbent
    inner join ours
        on incumbent.tx_date = ours.tx_date

),

overlap as (

    select
        pairs.tx_date,
        pairs.incumbent_model_version,
        pairs.model_version,
        count(*) as n_scored_by_both,
        sum(case when theirs.is_alert and mine.is_alert then 1 else 0 end) as n_alerts_both,
        sum(case when theirs.is_alert and not mine.is_alert then 1 else 0 end)
            as n_alerts_incumbent_only,
        sum(case when mine.is_alert and not theirs.is_alert then 1 else 0 end)
            as n_alerts_ours_only
    from pairs
    inner join features
        on pairs.tx_date = features.tx_date
    inner join predictions as theirs
        on
            features.transaction_id = theirs.transaction_id
            and pairs.incumbent_model_version = theirs.model_version
    inner join predictions as mine
        on
            features.transaction_id = mine.transaction_id
            and pairs.model_version = mine.model_version
    group by pairs.tx_date, pairs.incumbent_model_version, pairs.model_version

),

compared as (

    select
        pairs.tx_date,
        pairs.incumbent_model_name,
        pairs.incumbent_model_version,
        pairs.model_name,
        pairs.model_version,
        pairs.n_frauds,
        pairs.incumbent_average_precision,
        pairs.average_precision,
        pairs.card_precision_k,
        pairs.incumbent_card_precision_at_k,
        pairs.card_precision_at_k,
        coalesce(overlap.n_scored_by_both, 0) as n_scored_by_both,
        coalesce(overlap.n_alerts_both, 0) as n_alerts_both,
        coalesce(overlap.n_alerts_incumbent_only, 0) as n_alerts_incumbent_only,
        coalesce(overlap.n_alerts_ours_only, 0) as n_alerts_ours_only,
        overlap.n_alerts_both * 1.0 / nullif(
            overlap.n_alerts_both + overlap.n_alerts_incumbent_only + overlap.n_alerts_ours_only,
            0
        ) as alert_jaccard
    from pairs
    left join overlap
        on
            pairs.tx_date = overlap.tx_date
            and pairs.incumbent_model_version = overlap.incumbent_model_version
            and pairs.model_version = overlap.model_version

)

select * from compared
