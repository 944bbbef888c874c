with

source as (

    select logged.* from {{ read_serving_log(source('serving', 'predictions')) }} as logged

),

renamed as (

    select
        -- ids
        cast(source.request_id as string) as request_id,
        cast(source.transaction_id as bigint) as transaction_id,
        cast(source.customer_id as bigint) as customer_id,
        cast(source.terminal_id as bigint) as terminal_id,

        -- amounts
        cast(source.tx_amount as double) as tx_amount,
        cast(source.score as double) as score,
        cast(source.latency_ms as double) as latency_ms,

        -- model and outcome
        cast(source.model_name as string) as model_name,
        cast(source.model_version as string) as model_version,
        cast(source.is_alert as boolean) as is_alert,
        cast(source.status as integer) as status,
        cast(source.error_code as string) as error_code,

        -- timestamps
        cast(source.tx_datetime as timestamp) as tx_datetime,
        cast(source.received_at as timestamp) as received_at,
        cast(source.served_at as timestamp) as served_at,
        cast(source.received_at as date) as served_date

    from source

)

select * from renamed
