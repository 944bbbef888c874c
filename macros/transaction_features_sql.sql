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
      counts only frauds reported at or before t, whatever the report delay: the windowed count
      of every fraud reported so far, minus those reported after t, found by a join of the few
      frauds reported more than d days after they happened (none when reports take <= d days).

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
    {%- set fraud_weight = 67108864 -%}
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
            fraud_reports.reported_epoch_s,

            -- labels
            fraud_reports.fraud_scenario

        from {{ fraud_reports }} as fraud_reports

    ),

    -- the label as of this build (a report of a transaction not landed matches nothing)
    labelled as (

        select
            transactions.*,
            cast(case when fraud_reports.transaction_id is null then 0 else 1 end as integer)
                as tx_fraud,
            fraud_reports.reported_at,
            fraud_reports.reported_epoch_s,
            fraud_reports.fraud_scenario

        from transactions
        left join fraud_reports
            on transactions.transaction_id = fraud_reports.transaction_id

    ),

    -- Both families of RANGE windows in one pass. The customer frames end at the current row and
    -- so include its same-second peers; has_same_second_peer flags the (rare) rows that have one.
    -- A terminal frame's tally counts its transactions and, times fraud_weight (2^26), its frauds
    -- reported so far (even after t: corrected below) in one aggregate instead of two: a sum of
    -- integers below 2^53, exact in a double while a terminal has < 2^26 (67M) transactions in a
    -- window.
    windowed as (

        select
            {% for n in customer_windows %}
            count(*) over (
                partition by labelled.customer_id
                order by labelled.tx_epoch_s {{ days_range_frame(n) }}
            ) as customer_nb_tx_{{ n }}day_with_peers,
            sum(labelled.tx_amount) over (
                partition by labelled.customer_id
                order by labelled.tx_epoch_s {{ days_range_frame(n) }}
            ) as customer_amount_{{ n }}day_with_peers,
            {% endfor %}

            coalesce(
                lag(labelled.tx_epoch_s) over customer_order = labelled.tx_epoch_s
                or lead(labelled.tx_epoch_s) over customer_order = labelled.tx_epoch_s,
                false
            ) as has_same_second_peer,

            {% for n in terminal_windows %}
            sum(cast(1 + labelled.tx_fraud * {{ fraud_weight }} as double)) over (
                partition by labelled.terminal_id
                order by labelled.tx_epoch_s {{ days_range_frame(n, delay_days) }}
            ) as terminal_tally_{{ n }}day_window,
            {% endfor %}

            labelled.*

        from labelled
        window customer_order as (
            partition by labelled.customer_id order by labelled.tx_epoch_s
        )

    ),

    -- the terminal tallies split into transaction and fraud counts (0 for an empty window)
    tallied as (

        select
            {% for n in terminal_windows %}
            cast(
                coalesce(windowed.terminal_tally_{{ n }}day_window, 0)
                - floor(coalesce(windowed.terminal_tally_{{ n }}day_window, 0) / {{ fraud_weight }})
                * {{ fraud_weight }}
                as bigint
            ) as terminal_nb_tx_{{ n }}day_window,
            cast(
                floor(coalesce(windowed.terminal_tally_{{ n }}day_window, 0) / {{ fraud_weight }})
                as bigint
            ) as terminal_nb_frauds_{{ n }}day_window,
            {% endfor %}
            windowed.*

        from windowed

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

    -- Frauds that can sit in a terminal window (which ends d days before t) and still be
    -- unknown at t: those reported more than d days after they happened. Rare; none at all
    -- when every report takes at most d days.
    late_reported_frauds as (

        select
            labelled.terminal_id,
            labelled.tx_epoch_s,
            labelled.reported_at

        from labelled
        where
            labelled.tx_fraud = 1
            and labelled.reported_epoch_s >= labelled.tx_epoch_s + {{ delay_days * seconds_per_day }}

    ),

    -- per transaction and terminal window: the frauds in the window reported after t
    terminal_unknown_frauds as (

        select
            {% for n in terminal_windows %}
            sum(
                case
                    when
                        late_reported_frauds.tx_epoch_s
                        > transactions.tx_epoch_s - {{ (n + delay_days) * seconds_per_day }}
                        then 1
                    else 0
                end
            ) as nb_unknown_frauds_{{ n }}day_window,
            {% endfor %}
            transactions.transaction_id

        from transactions
        inner join late_reported_frauds
            on
                transactions.terminal_id = late_reported_frauds.terminal_id
                and late_reported_frauds.tx_epoch_s
                > transactions.tx_epoch_s - {{ (terminal_windows | max + delay_days) * seconds_per_day }}
                and late_reported_frauds.tx_epoch_s
                <= transactions.tx_epoch_s - {{ delay_days * seconds_per_day }}
                and late_reported_frauds.reported_at > transactions.tx_datetime
        group by transactions.transaction_id

    ),

    final as (

        select
            -- ids
            tallied.transaction_id,

            -- timestamps
            tallied.tx_datetime,
            tallied.tx_date,

            -- ids
            tallied.customer_id,
            tallied.terminal_id,

            -- features: the transaction
            tallied.tx_amount,
            cast(
                case when {{ iso_day_of_week('tallied.tx_datetime') }} >= 6 then 1 else 0 end
                as integer
            ) as tx_during_weekend,
            cast(
                case when extract(hour from tallied.tx_datetime) <= 6 then 1 else 0 end
                as integer
            ) as tx_during_night,

            -- features: the customer's spending
            {% for n in customer_windows %}
            tallied.customer_nb_tx_{{ n }}day_with_peers - coalesce(later_same_second.nb_tx, 0)
                as customer_id_nb_tx_{{ n }}day_window,
            (tallied.customer_amount_{{ n }}day_with_peers - coalesce(later_same_second.amount, 0))
            / (tallied.customer_nb_tx_{{ n }}day_with_peers - coalesce(later_same_second.nb_tx, 0))
                as customer_id_avg_amount_{{ n }}day_window,
            {% endfor %}

            -- features: the terminal's risk
            {% for n in terminal_windows %}
            tallied.terminal_nb_tx_{{ n }}day_window as terminal_id_nb_tx_{{ n }}day_window,
            case
                when tallied.terminal_nb_tx_{{ n }}day_window = 0 then 0.0
                else
                    cast(
                        tallied.terminal_nb_frauds_{{ n }}day_window
                        - coalesce(terminal_unknown_frauds.nb_unknown_frauds_{{ n }}day_window, 0)
                        as double
                    )
                    / tallied.terminal_nb_tx_{{ n }}day_window
            end as terminal_id_risk_{{ n }}day_window,
            {% endfor %}

            -- label (as of this build)
            tallied.tx_fraud,
            tallied.reported_at as fraud_reported_at,
            cast(coalesce(tallied.fraud_scenario, 0) as integer) as tx_fraud_scenario

        from tallied
        left join later_same_second
            on tallied.transaction_id = later_same_second.transaction_id
        left join terminal_unknown_frauds
            on tallied.transaction_id = terminal_unknown_frauds.transaction_id

    )

    select * from final
{%- endmacro %}
