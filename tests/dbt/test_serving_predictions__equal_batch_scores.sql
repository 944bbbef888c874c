-- The online score of every served transaction equals the batch score (`ml score`, in
-- scoring.predictions) of the same transaction and model version, within 1e-9: the server's
-- features and model are the batch path's. Rows scored online but not (yet) in batch are not
-- compared.
select
    served.transaction_id,
    served.model_version,
    served.score as online_score,
    batch.score as batch_score
from {{ ref('serving_predictions') }} as served
inner join {{ source('scoring', 'predictions') }} as batch
    on
        served.transaction_id = batch.transaction_id
        and served.model_version = batch.model_version
where abs(served.score - batch.score) > 1e-9 or served.is_alert != batch.is_alert
