-- transaction_features and fraud_kpis_daily tell the same story: per transaction day, as many
-- feature rows as transactions in the KPIs (so every silver transaction has its feature row,
-- the relationships test covering the other direction), and as many labelled frauds as
-- reported frauds. Returns the days where they disagree (in the daily builds' scope, the days
-- the latest load can have changed, and those of the transactions it relabelled:
-- macros/data_tests_window.sql).

with

-- whole days of either side: on or after the window, or holding a transaction relabelled in it
days as (

    select features.tx_date
    from {{ ref('transaction_features') }} as features
    where {{ data_tests_window_condition(['features.tx_date', 'features.fraud_reported_at']) }}

    union distinct

    select kpis_days.tx_date
    from {{ ref('fraud_kpis_daily') }} as kpis_days
    where {{ data_tests_window_condition('kpis_days.tx_date') }}

),

features_daily as (

    select
        features.tx_date,
        count(*) as nb_transactions,
        sum(features.tx_fraud) as nb_frauds

    from {{ ref('transaction_features') }} as features
    inner join days
        on features.tx_date = days.tx_date
    group by features.tx_date

),

kpis as (

    select kpis_daily.*
    from {{ ref('fraud_kpis_daily') }} as kpis_daily
    inner join days
        on kpis_daily.tx_date = days.tx_date

),

disagreements as (

    select
        coalesce(features_daily.tx_date, kpis.tx_date) as tx_date,
        features_daily.nb_transactions as nb_feature_rows,
        kpis.nb_transactions as nb_kpi_transactions,
        features_daily.nb_frauds as nb_labelled_frauds,
        kpis.nb_frauds as nb_kpi_frauds

    from features_daily
    full outer join kpis
        on features_daily.tx_date = kpis.tx_date
    where
        features_daily.tx_date is null
        or kpis.tx_date is null
        or features_daily.nb_transactions <> kpis.nb_transactions
        or features_daily.nb_frauds <> kpis.nb_frauds

)

select * from disagreements
