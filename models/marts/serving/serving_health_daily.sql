{#-
    The scoring server's health per day (of receipt) and model version: requests, rows, errors
    by HTTP status, and the server-side latency percentiles of its requests (a request's rows
    share one latency, so each request counts once).
-#}

with

logged as (

    select * from {{ ref('stg_serving__predictions') }}

),

requests as (

    select
        served_date,
        coalesce(model_version, 'none') as model_version,
        request_id,
        max(status) as status,
        max(latency_ms) as latency_ms,
        count(transaction_id) as scored_rows
    from logged
    group by served_date, coalesce(model_version, 'none'), request_id

),

daily as (

    select
        served_date,
        model_version,
        count(*) as requests,
        sum(scored_rows) as scored_transactions,
        sum(case when status >= 400 then 1 else 0 end) as error_requests,
        sum(case when status = 400 then 1 else 0 end) as errors_400,
        sum(case when status = 413 then 1 else 0 end) as errors_413,
        sum(case when status = 415 then 1 else 0 end) as errors_415,
        sum(case when status = 422 then 1 else 0 end) as errors_422,
        sum(case when status >= 500 then 1 else 0 end) as errors_5xx,
        {{ latency_percentile('latency_ms', 0.5) }} as latency_p50_ms,
        {{ latency_percentile('latency_ms', 0.95) }} as latency_p95_ms,
        {{ latency_percentile('latency_ms', 0.99) }} as latency_p99_ms,
        max(latency_ms) as latency_max_ms
    from requests
    group by served_date, model_version

)

select * from daily
