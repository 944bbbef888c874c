{#-
    The investigators' daily alert queue: the var('alert_top_k') highest-scored transactions
    of each transaction day, with the features an investigator looks at first.

    A transaction scored by several model versions (re-scored by a new champion) is ranked
    with its most recent score (gold.latest_predictions).

    An alert above the threshold (is_alert) shows that version's top 3 reasons
    (scoring.prediction_explanations), each with the feature's label from the feature_labels seed.
-#}

with

latest_prediction as (

    select * from {{ ref('latest_predictions') }}

),

features as (

    select * from {{ ref('transaction_features') }}

),

explanations as (

    select
        transaction_id,
        model_version,
        reason_rank,
        feature,
        feature_value,
        strength
    from {{ source('scoring', 'prediction_explanations') }}

),

feature_labels as (

    select * from {{ ref('feature_labels') }}

),

reasons as (

    select
        explanations.transaction_id,
        explanations.model_version,
        max(case when explanations.reason_rank = 1 then feature_labels.label end) as reason_1_label,
        max(case when explanations.reason_rank = 1 then explanations.feature end) as reason_1_feature,
        max(case when explanations.reason_rank = 1 then explanations.feature_value end) as reason_1_value,
        max(case when explanations.reason_rank = 1 then explanations.strength end) as reason_1_strength,
        max(case when explanations.reason_rank = 2 then feature_labels.label end) as reason_2_label,
        max(case when explanations.reason_rank = 2 then explanations.feature end) as reason_2_feature,
        max(case when explanations.reason_rank = 2 then explanations.feature_value end) as reason_2_value,
        max(case when explanations.reason_rank = 2 then explanations.strength end) as reason_2_strength,
        max(case when explanations.reason_rank = 3 then feature_labels.label end) as reason_3_label,
        max(case when explanations.reason_rank = 3 then explanations.feature end) as reason_3_feature,
        max(case when explanations.reason_rank = 3 then explanations.feature_value end) as reason_3_value,
        max(case when explanations.reason_rank = 3 then explanations.strength end) as reason_3_strength
    from explanations
    left join feature_labels
        on explanations.feature = feature_labels.feature
    group by explanations.transaction_id, explanations.model_version

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

),

explained_alerts as (

    select
        alerts.*,
        reasons.reason_1_label,
        reasons.reason_1_feature,
        reasons.reason_1_value,
        reasons.reason_1_strength,
        reasons.reason_2_label,
        reasons.reason_2_feature,
        reasons.reason_2_value,
        reasons.reason_2_strength,
        reasons.reason_3_label,
        reasons.reason_3_feature,
        reasons.reason_3_value,
        reasons.reason_3_strength
    from alerts
    left join reasons
        on
            alerts.transaction_id = reasons.transaction_id
            and alerts.model_version = reasons.model_version

)

select * from explained_alerts
