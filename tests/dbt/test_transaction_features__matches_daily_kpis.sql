-- transaction_features and fraud_kpis_daily tell the same story: per transaction day, as many
-- feature rows as transactions in the KPIs (so every silver transaction has its feature row,
-- the relationships test covering the other direction), and as many labelled frauds as
-- reported frauds. Returns the days where they disagree.

with

features_daily as (

    select
        features.tx_date,
        count(*) as transactions,
        sum(features.tx_fraud) as frauds

    from {{ ref('transaction_features') }} as features
    group by features.tx_date

),

kpis as (

    select * from {{ ref('fraud_kpis_daily') }}

),

disagreements as (

    select
        coalesce(features_daily.tx_date, kpis.tx_date) as tx_date,
        features_daily.transactions as feature_rows,
        kpis.transactions as kpi_transactions,
        features_daily.frauds as labelled_frauds,
        kpis.frauds as kpi_frauds

    from features_daily
    full outer join kpis
        on features_daily.tx_date = kpis.tx_date
    where
        features_daily.tx_date is null
        or kpis.tx_date is null
        or features_daily.transactions <> kpis.transactions
        or features_daily.frauds <> kpis.frauds

)

select * from disagreements
