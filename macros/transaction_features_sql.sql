{#-
    transaction_features_sql(transactions, fraud_reports): the SELECT statement of the gold
    feature table over the given inputs (relations, or parenthesised subqueries, with the columns
    of silver.int_transactions_deduplicated and silver.int_fraud_reports_deduplicated).

    One row per transaction of `transactions`: the 15 handbook features, point in time, and the
    label as of the reports in `fraud_reports`.

    * customer windows (t - n days, t], the current transaction included; two transactions of a
      card in the same second are ordered by transaction_id (the later one is not in the earlier
      one's window);
    * terminal windows (t - n - d days, t - d days], d = var('terminal_delay_days'); the risk
      counts only frauds reported at or before t, whatever the report delay.

    Windows are RANGE frames over the integer epoch seconds (DuckDB and Spark alike). A row's
    features depend only on rows of the previous feature_lookback_days() days, so the statement
    evaluated over the new rows plus that look-back gives the new rows' final features (the
    basis of an incremental build and of the test test_transaction_features__no_future_dependence,
    which evaluates it over truncated inputs).
-#}
{% macro transaction_features_sql(transactions, fraud_reports) -%}
{%- set customer_windows = var('customer_windows_days') -%}
{%- set terminal_windows = var('terminal_windows_days') -%}
{%- set delay_days = var('terminal_delay_days') -%}
{%- set seconds_per_day = 86400 -%}
{%- if delay_days < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var('terminal_delay_days') must be at least 1 day (got " ~ delay_days ~ "): "
        ~ "the terminal windows end d days before the transaction"
    ) }}
{%- endif -%}

with

transactions as (

    select
        -- ids
        transactions.transaction_id,
        transactions.customer_id,
        transactions.terminal_id,

        -- amounts
        transactions.tx_amount,

        -- timestamps
        transactions.tx_datetime,
        transactions.tx_epoch_s,
        transactions.tx_date

    from {{ transactions }} as transactions

),

fraud_reports as (

    select
        -- ids
        fraud_reports.transaction_id,

        -- timestamps
        fraud_reports.reported_at,

        -- labels
        fraud_reports.fraud_scenario

    from {{ fraud_reports }} as fraud_reports

),

-- Both families of RANGE windows in one pass. The customer frames end at the current row and
-- so include its same-second peers; has_same_second_peer flags the (rare) rows that have one.
windowed as (

    select
        transactions.*,

        {% for n in customer_windows -%}
        count(*) over (
            partition by transactions.customer_id
            order by transactions.tx_epoch_s {{ days_range_frame(n) }}
        ) as customer_nb_tx_{{ n }}day_with_peers,
        sum(transactions.tx_amount) over (
            partition by transactions.customer_id
            order by transactions.tx_epoch_s {{ days_range_frame(n) }}
        ) as customer_amount_{{ n }}day_with_peers,
        {% endfor -%}

        coalesce(
            lag(transactions.tx_epoch_s) over customer_order = transactions.tx_epoch_s
            or lead(transactions.tx_epoch_s) over customer_order = transactions.tx_epoch_s,
            false
        ) as has_same_second_peer,

        {% for n in terminal_windows -%}
        count(*) over (
            partition by transactions.terminal_id
            order by transactions.tx_epoch_s {{ days_range_frame(n, delay_days) }}
        ) as terminal_nb_tx_{{ n }}day_window{{ "," if not loop.last }}
        {% endfor %}

    from transactions
    window customer_order as (
        partition by transactions.customer_id order by transactions.tx_epoch_s
    )

),

-- Transactions of the same card in the same second but with a higher transaction_id: they are
-- in the RANGE frame of the current row but come after it, so they are taken out again.
same_second_peers as (

    select
        windowed.transaction_id,
        windowed.customer_id,
        windowed.tx_epoch_s,
        windowed.tx_amount

    from windowed
    where windowed.has_same_second_peer

),

later_same_second as (

    select
        earlier.transaction_id,
        count(*) as nb_tx,
        sum(later.tx_amount) as amount

    from same_second_peers as earlier
    inner join same_second_peers as later
        on
            earlier.customer_id = later.customer_id
            and earlier.tx_epoch_s = later.tx_epoch_s
            and earlier.transaction_id < later.transaction_id
    group by earlier.transaction_id

),

-- Frauds as the terminal windows see them: where, when, and since when they are known.
terminal_frauds as (

    select
        transactions.terminal_id,
        transactions.tx_epoch_s,
        fraud_reports.reported_at

    from fraud_reports
    inner join transactions
        on fraud_reports.transaction_id = transactions.transaction_id

),

-- Point in time: per transaction and terminal window, the frauds in the window that were
-- reported at or before the transaction. Frauds are rare, so this join stays small.
terminal_known_frauds as (

    select
        transactions.transaction_id,
        {% for n in terminal_windows -%}
        sum(
            case
                when
                    terminal_frauds.tx_epoch_s
                    > transactions.tx_epoch_s - {{ (n + delay_days) * seconds_per_day }}
                    then 1
                else 0
            end
        ) as nb_known_frauds_{{ n }}day_window{{ "," if not loop.last }}
        {% endfor %}

    from transactions
    inner join terminal_frauds
        on
            transactions.terminal_id = terminal_frauds.terminal_id
            and terminal_frauds.tx_epoch_s
            > transactions.tx_epoch_s - {{ (terminal_windows | max + delay_days) * seconds_per_day }}
            and terminal_frauds.tx_epoch_s
            <= transactions.tx_epoch_s - {{ delay_days * seconds_per_day }}
            and terminal_frauds.reported_at <= transactions.tx_datetime
    group by transactions.transaction_id

),

final as (

    select
        -- ids
        windowed.transaction_id,

        -- timestamps
        windowed.tx_datetime,
        windowed.tx_date,

        -- ids
        windowed.customer_id,
        windowed.terminal_id,

        -- features: the transaction
        windowed.tx_amount,
        cast(
            case when {{ iso_day_of_week('windowed.tx_datetime') }} >= 6 then 1 else 0 end
            as integer
        ) as tx_during_weekend,
        cast(
            case when extract(hour from windowed.tx_datetime) <= 6 then 1 else 0 end
            as integer
        ) as tx_during_night,

        -- features: the customer's spending
        {% for n in customer_windows -%}
        windowed.customer_nb_tx_{{ n }}day_with_peers - coalesce(later_same_second.nb_tx, 0)
            as customer_id_nb_tx_{{ n }}day_window,
        (windowed.customer_amount_{{ n }}day_with_peers - coalesce(later_same_second.amount, 0))
        / (windowed.customer_nb_tx_{{ n }}day_with_peers - coalesce(later_same_second.nb_tx, 0))
            as customer_id_avg_amount_{{ n }}day_window,
        {% endfor %}

        -- features: the terminal's risk
        {% for n in terminal_windows -%}
        windowed.terminal_nb_tx_{{ n }}day_window as terminal_id_nb_tx_{{ n }}day_window,
        case
            when windowed.terminal_nb_tx_{{ n }}day_window = 0 then 0.0
            else
                cast(coalesce(terminal_known_frauds.nb_known_frauds_{{ n }}day_window, 0) as double)
                / windowed.terminal_nb_tx_{{ n }}day_window
        end as terminal_id_risk_{{ n }}day_window,
        {% endfor %}

        -- label (as of this build)
        cast(case when fraud_reports.transaction_id is null then 0 else 1 end as integer)
            as tx_fraud,
        fraud_reports.reported_at as fraud_reported_at,
        cast(coalesce(fraud_reports.fraud_scenario, 0) as integer) as tx_fraud_scenario

    from windowed
    left join later_same_second
        on windowed.transaction_id = later_same_second.transaction_id
    left join terminal_known_frauds
        on windowed.transaction_id = terminal_known_frauds.transaction_id
    left join fraud_reports
        on windowed.transaction_id = fraud_reports.transaction_id

)

select * from final
{%- endmacro %}
