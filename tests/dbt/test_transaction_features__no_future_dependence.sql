-- No feature of transaction_features depends on the future.
--
-- The feature SQL (macro transaction_features_sql) is evaluated again over only what was known
-- at a cutoff, and the features of the transactions of the `compare_days` days up to the cutoff
-- must equal those of the built table (counts exactly, amounts and risks within 1e-9):
--
-- * per card: each card's history is cut right after its transaction that the card's next one
--   follows most closely (same second: the lower transaction_id), so a customer window that
--   reached past t by even a second, or took in a same-second transaction with a higher id,
--   would see a transaction that the recomputation does not have. Compares the customer and
--   transaction features (terminal windows mix cards, so they legitimately differ here);
-- * globally: everything is cut at the first transaction of the last second at or before the
--   middle of the data's time span, fraud reports included (reported at or before the cut).
--   Compares every feature: a terminal risk counting a fraud reported after t, or a window
--   longer than feature_lookback_days() (the history kept), changes them.
--
-- The extra features are covered too: the customer ones (amount ratios, z-score, max) in both
-- comparisons, terminal_id_reported_frauds_{d}day_window in the global one (a fraud reported
-- after t, or a same-second later peer, would make it differ).
--
-- In the daily builds' scope (var data_tests_scope = 'latest_load', macros/data_tests_window.sql)
-- both cutoffs are taken among the transactions of the days the latest load can have changed,
-- and silver is read from feature_lookback_days() + compare_days before them: the cost follows
-- the new days, not the history.
--
-- Returns the differing transactions (and those missing on either side).
{%- set seconds_per_day = 86400 -%}
{%- set compare_days = 3 -%}
{%- set history_days = compare_days + feature_lookback_days() -%}
{%- set customer_columns = {'exact': ['tx_during_weekend', 'tx_during_night'], 'float': ['tx_amount']} -%}
{%- set all_columns = {'exact': ['tx_during_weekend', 'tx_during_night'], 'float': ['tx_amount']} -%}
{%- for n in var('customer_windows_days') -%}
    {%- for columns in [customer_columns, all_columns] -%}
        {%- do columns['exact'].append('customer_id_nb_tx_' ~ n ~ 'day_window') -%}
        {%- do columns['float'].append('customer_id_avg_amount_' ~ n ~ 'day_window') -%}
    {%- endfor -%}
{%- endfor -%}
{%- for n in var('terminal_windows_days') -%}
    {%- do all_columns['exact'].append('terminal_id_nb_tx_' ~ n ~ 'day_window') -%}
    {%- do all_columns['float'].append('terminal_id_risk_' ~ n ~ 'day_window') -%}
{%- endfor -%}
{#- the extra features: customer ones in both sets, the terminal's reported frauds globally -#}
{%- set longest_customer_window = var('customer_windows_days') | max -%}
{%- for columns in [customer_columns, all_columns] -%}
    {%- for n in var('customer_windows_days') -%}
        {%- do columns['float'].append('customer_id_amount_ratio_' ~ n ~ 'day_window') -%}
    {%- endfor -%}
    {%- do columns['float'].append('customer_id_amount_zscore_' ~ longest_customer_window ~ 'day_window') -%}
    {%- do columns['float'].append('customer_id_max_amount_' ~ longest_customer_window ~ 'day_window') -%}
{%- endfor -%}
{%- do all_columns['exact'].append('terminal_id_reported_frauds_' ~ var('terminal_delay_days') ~ 'day_window') -%}

{#- rows where the built and recomputed features differ, per set of columns -#}
{%- set differs = {} -%}
{%- for name, columns in [('customer', customer_columns), ('all', all_columns)] -%}
    {%- set condition = ['built.transaction_id is null', 'recomputed.transaction_id is null'] -%}
    {%- for column in columns['exact'] -%}
        {%- do condition.append('built.' ~ column ~ ' <> recomputed.' ~ column) -%}
    {%- endfor -%}
    {%- for column in columns['float'] -%}
        {%- do condition.append(
            'abs(built.' ~ column ~ ' - recomputed.' ~ column ~ ') > 1e-9 * greatest(1.0, abs(recomputed.'
            ~ column ~ '))'
        ) -%}
    {%- endfor -%}
    {%- do differs.update({name: condition | join('\n        or ')}) -%}
{%- endfor %}

with

-- silver, read once (the recomputations take their histories from it too)
silver_transactions as (

    select silver_transactions.*

    from {{ ref('int_transactions_deduplicated') }} as silver_transactions
    -- (a kept transaction lands on or after its day: the landed day's condition follows from
    -- the transaction day's, and lets the scan skip older row groups)
    where
        {{ data_tests_window_condition('silver_transactions.tx_date', days_before=history_days) }}
        and {{ data_tests_window_condition('silver_transactions._landed_date', days_before=history_days) }}

),

-- per card: how soon the card's next transaction follows each transaction
card_gaps as (

    select
        silver_transactions.customer_id,
        silver_transactions.transaction_id,
        silver_transactions.tx_epoch_s,
        silver_transactions.tx_date,
        lead(silver_transactions.tx_epoch_s) over (
            partition by silver_transactions.customer_id
            order by silver_transactions.tx_epoch_s, silver_transactions.transaction_id
        ) - silver_transactions.tx_epoch_s as seconds_to_next

    from silver_transactions

),

card_cutoffs as (

    select
        ranked.customer_id,
        ranked.transaction_id,
        ranked.tx_epoch_s

    from (
        select
            card_gaps.*,
            row_number() over (
                partition by card_gaps.customer_id
                order by card_gaps.seconds_to_next, card_gaps.tx_epoch_s, card_gaps.transaction_id
            ) as closeness_rank
        from card_gaps
        where
            card_gaps.seconds_to_next is not null
            and {{ data_tests_window_condition('card_gaps.tx_date') }}
    ) as ranked
    where ranked.closeness_rank = 1

),

-- each card's transactions known at its cutoff, from the look-back before the compared days
card_histories as (

    select silver_transactions.transaction_id

    from silver_transactions
    inner join card_cutoffs
        on silver_transactions.customer_id = card_cutoffs.customer_id
    where
        silver_transactions.tx_epoch_s > card_cutoffs.tx_epoch_s - {{ history_days * seconds_per_day }}
        and (
            silver_transactions.tx_epoch_s < card_cutoffs.tx_epoch_s
            or (
                silver_transactions.tx_epoch_s = card_cutoffs.tx_epoch_s
                and silver_transactions.transaction_id <= card_cutoffs.transaction_id
            )
        )

),

card_compared as (

    select silver_transactions.transaction_id

    from silver_transactions
    inner join card_histories
        on silver_transactions.transaction_id = card_histories.transaction_id
    inner join card_cutoffs
        on silver_transactions.customer_id = card_cutoffs.customer_id
    where silver_transactions.tx_epoch_s > card_cutoffs.tx_epoch_s - {{ compare_days * seconds_per_day }}

),

card_recomputed as (

    select recomputed.*

    from (
        {#- customer features read no label: no fraud report is given #}
        {{ transaction_features_sql(
            transactions="(
                select history.*
                from silver_transactions as history
                inner join card_histories
                    on history.transaction_id = card_histories.transaction_id
            )",
            fraud_reports="(
                select no_reports.*
                from " ~ ref('int_fraud_reports_deduplicated') ~ " as no_reports
                where 1 = 0
            )"
        ) | indent(8) }}
    ) as recomputed

),

-- globally: the first transaction of the last second at or before the middle of the span
global_cutoff as (

    select
        cutoff_second.tx_epoch_s,
        min(silver_transactions.transaction_id) as transaction_id

    from (
        select max(earlier.tx_epoch_s) as tx_epoch_s
        from silver_transactions as earlier
        cross join (
            select
                min(spanned.tx_epoch_s) as first_epoch_s,
                max(spanned.tx_epoch_s) as last_epoch_s
            from silver_transactions as spanned
            where {{ data_tests_window_condition('spanned.tx_date') }}
        ) as span
        where earlier.tx_epoch_s <= span.first_epoch_s + (span.last_epoch_s - span.first_epoch_s) / 2
    ) as cutoff_second
    inner join silver_transactions
        on cutoff_second.tx_epoch_s = silver_transactions.tx_epoch_s
    group by cutoff_second.tx_epoch_s

),

global_history as (

    select silver_transactions.transaction_id

    from silver_transactions
    cross join global_cutoff
    where
        silver_transactions.tx_epoch_s > global_cutoff.tx_epoch_s - {{ history_days * seconds_per_day }}
        and (
            silver_transactions.tx_epoch_s < global_cutoff.tx_epoch_s
            or (
                silver_transactions.tx_epoch_s = global_cutoff.tx_epoch_s
                and silver_transactions.transaction_id <= global_cutoff.transaction_id
            )
        )

),

global_compared as (

    select silver_transactions.transaction_id

    from silver_transactions
    inner join global_history
        on silver_transactions.transaction_id = global_history.transaction_id
    cross join global_cutoff
    where silver_transactions.tx_epoch_s > global_cutoff.tx_epoch_s - {{ compare_days * seconds_per_day }}

),

global_recomputed as (

    select recomputed.*

    from (
        {{ transaction_features_sql(
            transactions="(
                select history.*
                from silver_transactions as history
                inner join global_history
                    on history.transaction_id = global_history.transaction_id
            )",
            fraud_reports="(
                select known_reports.*
                from " ~ ref('int_fraud_reports_deduplicated') ~ " as known_reports
                cross join global_cutoff
                where
                    known_reports.reported_epoch_s <= global_cutoff.tx_epoch_s
                    and " ~ data_tests_window_condition('known_reports.report_date', days_before=history_days) ~ "
            )"
        ) | indent(8) }}
    ) as recomputed

),

-- the built rows that can be compared (in the daily scope: from compare_days before the window)
built as (

    select built_features.*
    from {{ ref('transaction_features') }} as built_features
    where {{ data_tests_window_condition('built_features.tx_date', days_before=compare_days + 1) }}

),

failures as (

    select
        'per_card_cutoff' as cutoff,
        card_compared.transaction_id,
        built.transaction_id is null as missing_from_built_table,
        recomputed.transaction_id is null as missing_from_recomputation

    from card_compared
    left join built
        on card_compared.transaction_id = built.transaction_id
    left join card_recomputed as recomputed
        on card_compared.transaction_id = recomputed.transaction_id
    where
        {{ differs['customer'] }}

    union all

    select
        'global_cutoff' as cutoff,
        global_compared.transaction_id,
        built.transaction_id is null as missing_from_built_table,
        recomputed.transaction_id is null as missing_from_recomputation

    from global_compared
    left join built
        on global_compared.transaction_id = built.transaction_id
    left join global_recomputed as recomputed
        on global_compared.transaction_id = recomputed.transaction_id
    where
        {{ differs['all'] }}

)

select * from failures
