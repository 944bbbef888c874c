{#-
    The investigators' daily alert queue: the var('alert_top_k') highest-scored transactions
    of each transaction day, with the features an investigator looks at first.

    A transaction scored by several model versions (re-scored by a new champion) is ranked
    with its most recent score (gold.latest_predictions).
-#}

with

latest_prediction as (

    select * from {{ ref('latest_predictions') }}

),

features as (

    select * from {{ ref('transaction_features') }}

),

scored_transactions as (

    select
        -- ids
        features.transaction_id,
        features.customer_id,
        features.terminal_id,
        latest_prediction.model_name,
        latest_prediction.model_version,

        -- timestamps
        features.tx_date as alert_date,
        features.tx_datetime,
        latest_prediction.scored_at,

        -- score
        latest_prediction.score,
        latest_prediction.is_alert,

        -- features
        features.tx_amount,
        features.customer_id_nb_tx_1day_window,
        features.customer_id_avg_amount_1day_window,
        features.customer_id_nb_tx_7day_window,
        features.customer_id_avg_amount_7day_window,
        features.customer_id_nb_tx_30day_window,
        features.customer_id_avg_amount_30day_window,
        features.terminal_id_risk_1day_window,
        features.terminal_id_risk_7day_window,
        features.terminal_id_risk_30day_window,

        row_number() over (
            partition by features.tx_date
            order by latest_prediction.score desc, features.transaction_id asc
        ) as alert_rank
    from latest_prediction
    inner join features
        on latest_prediction.transaction_id = features.transaction_id

),

alerts as (

    select
        alert_date,
        alert_rank,
        transaction_id,
        customer_id,
        terminal_id,
        tx_datetime,
        score,
        is_alert,
        model_name,
        model_version,
        scored_at,
        tx_amount,
        customer_id_nb_tx_1day_window,
        customer_id_avg_amount_1day_window,
        customer_id_nb_tx_7day_window,
        customer_id_avg_amount_7day_window,
        customer_id_nb_tx_30day_window,
        customer_id_avg_amount_30day_window,
        terminal_id_risk_1day_window,
        terminal_id_risk_7day_window,
        terminal_id_risk_30day_window
    from scored_transactions
    where alert_rank <= {{ var('alert_top_k') | int }}

)

select * from alerts
