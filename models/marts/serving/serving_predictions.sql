{#-
    One row per transaction the scoring server scored: its first served copy (a retry of the
    same transaction is logged again; the first answer is the one the bank acted on), and how
    many times it was served.
-#}

with

logged as (

    select * from {{ ref('stg_serving__predictions') }}
    where status = 200 and transaction_id is not null

),

ranked as (

    select
        logged.*,
        row_number() over (
            partition by logged.transaction_id
            order by logged.served_at asc, logged.request_id asc
        ) as serving_order,
        count(*) over (partition by logged.transaction_id) as times_served
    from logged

),

first_served as (

    select
        transaction_id,
        request_id,
        tx_datetime,
        customer_id,
        terminal_id,
        tx_amount,
        model_name,
        model_version,
        score,
        is_alert,
        received_at,
        served_at,
        served_date,
        latency_ms,
        times_served
    from ranked
    where serving_order = 1

)

select * from first_served
