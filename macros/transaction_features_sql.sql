{#-
    transaction_features_sql(transactions, fraud_reports): the SELECT statement of the gold
    feature table over the given inputs (relations, or parenthesised subqueries, with the columns
    of silver.int_transactions_deduplicated and silver.int_fraud_reports_deduplicated).

    One row per transaction of `transactions`: the 15 handbook features and our 6 extra ones,
    point in time, and the label as of the reports in `fraud_reports`.

    * customer windows (t - n days, t], the current transaction included; two transactions of a
      card in the same second are ordered by transaction_id (the later one is not in the earlier
      one's window);
    * terminal windows (t - n - d days, t - d days], d = var('terminal_delay_days'); the risk
      counts only frauds reported at or before t, whatever the report delay: the windowed count
      of every fraud reported so far, minus those reported after t, found by a join of the few
      frauds reported more than d days after they happened (none when reports take <= d days);
    * extra customer features over the same customer windows: amount / window mean (every
      window), and over the longest window the amount's z-score (population std; 0 when the std is
      0) and the maximum amount. Same-second ties: the (rare) rows with a same-second peer take
      all their customer windows from a join of their card's history, where the tie rule is a
      join condition (customer_pairs, the same join that computes the targets' windows);
    * terminal_id_reported_frauds_{d}day_window: the OTHER transactions of the terminal in
      (t - d days, t] (same-second peers with a higher transaction_id excluded) that are frauds
      reported at or before t: the window the terminal risk leaves out, counted with the labels
      known at t thanks to the feed's report timestamps. A join of the fraud rows onto their
      terminal's transactions, in d-day buckets: at most a fraud's terminal transactions of 2d
      days each (worst case a busy terminal: frauds x its transactions in 2d days).

    targets (optional): a relation or subquery with a `transaction_id` column, the rows to output
    (the incremental build's recomputed rows; `transactions` then holds them plus their look-back).
    Same values, computed for those rows only: their customer features by a join of each target
    row with its card's rows of the longest customer window (a card's 30 days: tens of rows,
    which is what makes the join cheap and safe; the tie rule is then a join condition), and the
    terminal windows over the transactions of the targets' terminals only (terminal volumes are
    unbounded — a busy merchant — so they keep the windowed form). Without targets every row of
    `transactions` is output and both families are RANGE windows.

    Windows are RANGE frames over the integer epoch seconds (DuckDB and Spark alike). A row's
    features depend only on rows of the previous feature_lookback_days() days, so the statement
    evaluated over the new rows plus that look-back gives the new rows' final features (the
    basis of an incremental build and of the test test_transaction_features__no_future_dependence,
    which evaluates it over truncated inputs).
-#}
{#- sqlfluff's jinja tracer mis-reads the indentation of the jinja set lines below once the body
    holds the long targets if/else; LT02 is off for those lines only, on again for the SQL. -#}
-- noqa: disable=LT02
{% macro transaction_features_sql(transactions, fraud_reports, targets=none) -%}
    {%- set customer_windows = var('customer_windows_days') -%}
    {%- set terminal_windows = var('terminal_windows_days') -%}
    {%- set delay_days = var('terminal_delay_days') -%}
    {%- set seconds_per_day = 86400 -%}
    {%- set fraud_weight = 67108864 -%}
    {%- set longest_customer_window = customer_windows | max -%}
    {%- if delay_days < 1 -%}
        {{ exceptions.raise_compiler_error(
            "var('terminal_delay_days') must be at least 1 day (got " ~ delay_days ~ "): "
            ~ "the terminal windows end d days before the transaction"
        ) }}
    {%- endif %}
    -- noqa: enable=LT02

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

    {% if targets is none %}

    -- every row is output, and every row is a window input
    outputs as (

        select labelled.*

        from labelled

    ),

    windowed_input as (

        select labelled.*

        from labelled

    ),

    {% else %}

    -- the rows to output (targets), with their inputs
    outputs as (

        select labelled.*

        from labelled
        where labelled.transaction_id in (select targets.transaction_id from {{ targets }} as targets)

    ),

    -- the terminal windows need only the transactions of the targets' terminals, from the
    -- longest window before each terminal's first target on (a RANGE frame reads only its own
    -- rows, so the targets' values are those over every row)
    target_terminals as (

        select
            outputs.terminal_id,
            min(outputs.tx_epoch_s) as first_epoch_s

        from outputs
        group by outputs.terminal_id

    ),

    windowed_input as (

        select labelled.*

        from labelled
        inner join target_terminals
            on labelled.terminal_id = target_terminals.terminal_id
        where
            labelled.tx_epoch_s
            > target_terminals.first_epoch_s - {{ (terminal_windows | max + delay_days) * seconds_per_day }}

    ),

    {% endif %}

    -- The terminal RANGE windows. A terminal frame's tally counts its transactions and, times
    -- fraud_weight (2^26), its frauds reported so far (even after t: corrected below) in one
    -- aggregate instead of two: a sum of integers below 2^53, exact in a double while a terminal
    -- has < 2^26 (67M) transactions in a window.
    terminal_windowed as (

        select
            {% for n in terminal_windows %}
            sum(cast(1 + windowed_input.tx_fraud * {{ fraud_weight }} as double)) over (
                partition by windowed_input.terminal_id
                order by windowed_input.tx_epoch_s {{ days_range_frame(n, delay_days) }}
            ) as terminal_tally_{{ n }}day_window,
            {% endfor %}
            windowed_input.*

        from windowed_input

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

        from terminal_windowed as windowed

    ),

    -- Fraud rows, each in the two d-day buckets that the transactions whose (t - d days, t]
    -- window holds it fall in (t in [fraud time, fraud time + d days)).
    fraud_buckets as (

        select
            labelled.terminal_id,
            labelled.transaction_id,
            labelled.tx_epoch_s,
            labelled.reported_at,
            cast(floor(labelled.tx_epoch_s / {{ delay_days * seconds_per_day }}) as bigint)
            + spread.bucket_offset as bucket

        from labelled
        cross join (
            select 0 as bucket_offset
            union all
            select 1 as bucket_offset
        ) as spread
        where labelled.tx_fraud = 1

    ),

    -- per transaction: the other frauds of its terminal in (t - d days, t] known at t
    terminal_reported_frauds as (

        select
            transactions.transaction_id,
            count(*) as nb_reported_frauds

        from outputs as transactions
        inner join fraud_buckets
            on
                transactions.terminal_id = fraud_buckets.terminal_id
                and cast(floor(transactions.tx_epoch_s / {{ delay_days * seconds_per_day }}) as bigint)
                = fraud_buckets.bucket
        where
            fraud_buckets.tx_epoch_s > transactions.tx_epoch_s - {{ delay_days * seconds_per_day }}
            and (
                fraud_buckets.tx_epoch_s < transactions.tx_epoch_s
                or (
                    fraud_buckets.tx_epoch_s = transactions.tx_epoch_s
                    and fraud_buckets.transaction_id < transactions.transaction_id
                )
            )
            and fraud_buckets.reported_at <= transactions.tx_datetime
        group by transactions.transaction_id

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

        from outputs as transactions
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

    {% if targets is none %}

    -- The customer RANGE windows. Their frames end at the current row and so include its
    -- same-second peers; has_same_second_peer flags the (rare) rows that have one.
    windowed as (

        select
            {% for n in customer_windows %}
            count(*) over (
                partition by tallied.customer_id
                order by tallied.tx_epoch_s {{ days_range_frame(n) }}
            ) as customer_nb_tx_{{ n }}day_with_peers,
            sum(tallied.tx_amount) over (
                partition by tallied.customer_id
                order by tallied.tx_epoch_s {{ days_range_frame(n) }}
            ) as customer_amount_{{ n }}day_with_peers,
            {% endfor %}
            max(tallied.tx_amount) over (
                partition by tallied.customer_id
                order by tallied.tx_epoch_s {{ days_range_frame(longest_customer_window) }}
            ) as customer_max_amount_with_peers,
            var_pop(tallied.tx_amount) over (
                partition by tallied.customer_id
                order by tallied.tx_epoch_s {{ days_range_frame(longest_customer_window) }}
            ) as customer_var_amount_with_peers,
            coalesce(
                lag(tallied.tx_epoch_s) over customer_order = tallied.tx_epoch_s
                or lead(tallied.tx_epoch_s) over customer_order = tallied.tx_epoch_s,
                false
            ) as has_same_second_peer,
            tallied.*

        from tallied
        window customer_order as (
            partition by tallied.customer_id order by tallied.tx_epoch_s
        )

    ),


    -- The rows with a same-second peer: their RANGE frames end at the current row and so hold
    -- the later peers too; their customer windows come from the pair join below instead.
    pair_rows as (

        select
            windowed.transaction_id,
            windowed.customer_id,
            windowed.tx_epoch_s

        from windowed
        where windowed.has_same_second_peer

    ),

    {% else %}

    -- every target row's customer windows come from the pair join below
    pair_rows as (

        select
            outputs.transaction_id,
            outputs.customer_id,
            outputs.tx_epoch_s

        from outputs

    ),

    {% endif %}

    -- The customer windows of pair_rows, by a join with their card's rows of the longest window;
    -- the tie rule (same second: lower transaction_id first) is a join condition here.
    customer_pairs as (

        select
            pair_rows.transaction_id,
            {% for n in customer_windows %}
            count(
                case
                    when history.tx_epoch_s > pair_rows.tx_epoch_s - {{ n * seconds_per_day }} then 1
                end
            ) as customer_nb_tx_{{ n }}day,
            sum(
                case
                    when history.tx_epoch_s > pair_rows.tx_epoch_s - {{ n * seconds_per_day }}
                        then history.tx_amount
                end
            ) as customer_amount_{{ n }}day,
            {% endfor %}
            max(history.tx_amount) as customer_max_amount,
            var_pop(history.tx_amount) as customer_var_amount

        from pair_rows
        inner join labelled as history
            on
                pair_rows.customer_id = history.customer_id
                and history.tx_epoch_s > pair_rows.tx_epoch_s - {{ longest_customer_window * seconds_per_day }}
                and history.tx_epoch_s <= pair_rows.tx_epoch_s
        where
            history.tx_epoch_s < pair_rows.tx_epoch_s
            or history.transaction_id <= pair_rows.transaction_id
        group by pair_rows.transaction_id

    ),

    {% if targets is none %}

    -- the RANGE windows, and the pair join's for the rows with a same-second peer
    customer_features as (

        select
            windowed.*,
            {% for n in customer_windows %}
            coalesce(customer_pairs.customer_nb_tx_{{ n }}day, windowed.customer_nb_tx_{{ n }}day_with_peers)
                as customer_nb_tx_{{ n }}day,
            coalesce(customer_pairs.customer_amount_{{ n }}day, windowed.customer_amount_{{ n }}day_with_peers)
                as customer_amount_{{ n }}day,
            {% endfor %}
            coalesce(customer_pairs.customer_max_amount, windowed.customer_max_amount_with_peers)
                as customer_max_amount,
            coalesce(customer_pairs.customer_var_amount, windowed.customer_var_amount_with_peers)
                as customer_var_amount

        from windowed
        left join customer_pairs
            on windowed.transaction_id = customer_pairs.transaction_id

    ),

    {% else %}

    -- the target rows with their customer windows from the pairs
    customer_features as (

        select
            tallied.*,
            {% for n in customer_windows %}
            customer_pairs.customer_nb_tx_{{ n }}day,
            customer_pairs.customer_amount_{{ n }}day,
            {% endfor %}
            customer_pairs.customer_max_amount,
            customer_pairs.customer_var_amount

        from tallied
        inner join customer_pairs
            on tallied.transaction_id = customer_pairs.transaction_id

    ),

    {% endif %}

    -- the terminal corrections joined on
    corrected as (

        select
            customer_features.*,
            {% for n in terminal_windows %}
            coalesce(terminal_unknown_frauds.nb_unknown_frauds_{{ n }}day_window, 0)
                as terminal_nb_unknown_frauds_{{ n }}day_window,
            {% endfor %}
            coalesce(terminal_reported_frauds.nb_reported_frauds, 0) as terminal_nb_reported_frauds

        from customer_features
        left join terminal_unknown_frauds
            on customer_features.transaction_id = terminal_unknown_frauds.transaction_id
        left join terminal_reported_frauds
            on customer_features.transaction_id = terminal_reported_frauds.transaction_id

    ),

    final as (

        select
            -- ids
            corrected.transaction_id,

            -- timestamps
            corrected.tx_datetime,
            corrected.tx_date,

            -- ids
            corrected.customer_id,
            corrected.terminal_id,

            -- features: the transaction
            corrected.tx_amount,
            cast(
                case when {{ iso_day_of_week('corrected.tx_datetime') }} >= 6 then 1 else 0 end
                as integer
            ) as tx_during_weekend,
            cast(
                case when extract(hour from corrected.tx_datetime) <= 6 then 1 else 0 end
                as integer
            ) as tx_during_night,

            -- features: the customer's spending
            {% for n in customer_windows %}
            corrected.customer_nb_tx_{{ n }}day as customer_id_nb_tx_{{ n }}day_window,
            corrected.customer_amount_{{ n }}day / corrected.customer_nb_tx_{{ n }}day
                as customer_id_avg_amount_{{ n }}day_window,
            {% endfor %}

            -- features: the terminal's risk
            {% for n in terminal_windows %}
            corrected.terminal_nb_tx_{{ n }}day_window as terminal_id_nb_tx_{{ n }}day_window,
            case
                when corrected.terminal_nb_tx_{{ n }}day_window = 0 then 0.0
                else
                    cast(
                        corrected.terminal_nb_frauds_{{ n }}day_window
                        - corrected.terminal_nb_unknown_frauds_{{ n }}day_window
                        as double
                    )
                    / corrected.terminal_nb_tx_{{ n }}day_window
            end as terminal_id_risk_{{ n }}day_window,
            {% endfor %}

            -- extra features: the amount against the customer's habits
            -- (a window of zero-amount authorisations only has mean 0, and this amount is 0 too:
            -- it equals the mean, ratio 1)
            {% for n in customer_windows %}
            case
                when corrected.customer_amount_{{ n }}day = 0 then 1.0
                else
                    corrected.tx_amount
                    / (corrected.customer_amount_{{ n }}day / corrected.customer_nb_tx_{{ n }}day)
            end as customer_id_amount_ratio_{{ n }}day_window,
            {% endfor %}
            case
                when corrected.customer_var_amount <= 0 then 0.0
                else
                    (
                        corrected.tx_amount
                        - corrected.customer_amount_{{ longest_customer_window }}day
                        / corrected.customer_nb_tx_{{ longest_customer_window }}day
                    )
                    / sqrt(corrected.customer_var_amount)
            end as customer_id_amount_zscore_{{ longest_customer_window }}day_window,
            corrected.customer_max_amount as customer_id_max_amount_{{ longest_customer_window }}day_window,

            -- extra feature: the terminal's frauds reported in the window its risk leaves out
            cast(corrected.terminal_nb_reported_frauds as bigint)
                as terminal_id_reported_frauds_{{ delay_days }}day_window,

            -- label (as of this build)
            corrected.tx_fraud,
            corrected.reported_at as fraud_reported_at,
            cast(coalesce(corrected.fraud_scenario, 0) as integer) as tx_fraud_scenario

        from corrected

    )

    select * from final
{%- endmacro %}
