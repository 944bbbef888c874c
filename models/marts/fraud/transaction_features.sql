{#-
    The fraud model's inputs: the 15 model inputs of the Fraud Detection Handbook (chapter 3.4)
    and our 6 extra features, point in time, plus the label. One row per transaction. The SQL
    lives in the macro transaction_features_sql (macros/transaction_features_sql.sql) so that tests
    can evaluate the very same statement over truncated inputs.

    Incremental (where the adapter can upsert, see macros/transaction_features_config.sql): a run
    recomputes only the rows whose features or label can have changed since the table was built,
    found by comparing silver with the table itself (no watermark):
    * changed transactions: those not in the table yet (new or late-landed), those in the table
      that left silver (a later conflicting copy quarantined them; the post-hook deletes their
      rows), and those whose label differs from silver's (a fraud report landed, or changed, since);
    * the rows they affect: a new transaction at c enters the customer windows of its card's
      rows with t in [c, c + 30 days) and the terminal windows and reported-frauds counts of its
      terminal's rows with t in [c, c + 37 days]; a label reported at r for a transaction at c
      changes only its terminal's rows with t in [r, c + 37 days] (before r it was unknown, and
      rows before r already count it as unknown). 37 = feature_lookback_days();
    * those rows are recomputed with transaction_features_sql over silver from
      feature_lookback_days() before the earliest of them (targets='affected': only they are
      computed — their customer windows by a join with their cards' last 30 days, the terminal
      windows over their terminals' transactions), which gives their final features
      (test_transaction_features__no_future_dependence checks that property), and upserted by
      transaction_id. tests/test_features_incremental.py checks a day-by-day build equals a
      full refresh.
-#}
-- sqlfluff:indentation:template_blocks_indent:false
{{ config(
    unique_key='transaction_id',
    on_schema_change='fail',
    post_hook="{{ transaction_features_retractions(ref('int_transactions_deduplicated')) }}",
    **transaction_features_config()
) }}

{%- if is_incremental() %}
{%- set seconds_per_day = 86400 -%}
{%- set lookback_seconds = feature_lookback_days() * seconds_per_day -%}
{%- set customer_seconds = (var('customer_windows_days') | max) * seconds_per_day %}

with

-- silver and the table are read where needed rather than materialized whole: DuckDB would
-- materialize a CTE read several times (every row of the history, at every run: 1.68 -> 1.15 s
-- of an incremental run with 730 days of history, 0.37 -> 0.23 s with 183; bench/bench_scale.py)
silver_transactions as {{ cte_not_materialized() }} (

    select
        silver_transactions.transaction_id,
        silver_transactions.customer_id,
        silver_transactions.terminal_id,
        silver_transactions.tx_epoch_s,
        silver_transactions.tx_date

    from {{ ref('int_transactions_deduplicated') }} as silver_transactions

),

silver_fraud_reports as (

    select
        silver_fraud_reports.transaction_id,
        silver_fraud_reports.reported_at,
        silver_fraud_reports.reported_epoch_s,
        silver_fraud_reports.fraud_scenario

    from {{ ref('int_fraud_reports_deduplicated') }} as silver_fraud_reports

),

built as {{ cte_not_materialized() }} (

    select
        built.transaction_id,
        built.customer_id,
        built.terminal_id,
        {{ epoch_seconds('built.tx_datetime') }} as tx_epoch_s,
        built.tx_date,
        built.tx_fraud,
        built.fraud_reported_at,
        built.tx_fraud_scenario

    from {{ this }} as built

),

-- Days whose transactions differ between silver and the table (a day on one side only, or
-- another count or sum of ids): the only ones where the table can miss a transaction or hold
-- one that left silver, so the anti-joins below read those days only instead of the whole table.
changed_days as (

    {{ changed_tx_days('silver_transactions', 'built') | indent(4) }}

),

built_on_changed_days as (

    select
        built.transaction_id,
        built.customer_id,
        built.terminal_id,
        built.tx_epoch_s

    from built
    inner join changed_days
        on built.tx_date = changed_days.tx_date

),

-- silver's side of the same days: both anti-joins below join two days' worth of rows (a
-- transaction whose day differs between the two sides makes both of its days changed days)
-- instead of hashing every silver row (at 730 days of history: 0.97 -> 0.57 s per run)
silver_on_changed_days as (

    select
        silver_transactions.transaction_id,
        silver_transactions.customer_id,
        silver_transactions.terminal_id,
        silver_transactions.tx_epoch_s

    from silver_transactions
    inner join changed_days
        on silver_transactions.tx_date = changed_days.tx_date

),

-- transactions not in the table yet: they change rows from their own time on
new_transactions as (

    select
        silver_on_changed_days.transaction_id,
        silver_on_changed_days.customer_id,
        silver_on_changed_days.terminal_id,
        silver_on_changed_days.tx_epoch_s,
        silver_on_changed_days.tx_epoch_s as affects_from_epoch_s

    from silver_on_changed_days
    left join built_on_changed_days
        on silver_on_changed_days.transaction_id = built_on_changed_days.transaction_id
    where built_on_changed_days.transaction_id is null

),

-- transactions in the table that left silver (a later conflicting copy quarantined both): the
-- post-hook deletes them; the rows whose windows held them are recomputed from their time on
removed_transactions as (

    select
        built_on_changed_days.transaction_id,
        built_on_changed_days.customer_id,
        built_on_changed_days.terminal_id,
        built_on_changed_days.tx_epoch_s,
        built_on_changed_days.tx_epoch_s as affects_from_epoch_s

    from built_on_changed_days
    left join silver_on_changed_days
        on built_on_changed_days.transaction_id = silver_on_changed_days.transaction_id
    where silver_on_changed_days.transaction_id is null

),

-- transactions that entered or left the customer windows
customer_changes as (

    select * from new_transactions
    union all
    select * from removed_transactions

),

-- labels that differ between silver and the table (both sides are the < 1 % frauds)
label_changes as (

    select
        coalesce(built_frauds.transaction_id, silver_fraud_reports.transaction_id) as transaction_id,
        silver_fraud_reports.reported_epoch_s as new_reported_epoch_s,
        {{ epoch_seconds('built_frauds.fraud_reported_at') }} as old_reported_epoch_s

    from (
        select built.*
        from built
        where built.tx_fraud = 1
    ) as built_frauds
    full outer join silver_fraud_reports
        on built_frauds.transaction_id = silver_fraud_reports.transaction_id
    where
        built_frauds.transaction_id is null
        or silver_fraud_reports.transaction_id is null
        or built_frauds.fraud_reported_at <> silver_fraud_reports.reported_at
        or built_frauds.tx_fraud_scenario <> silver_fraud_reports.fraud_scenario

),

-- landed transactions whose label changed: they change their terminal's rows from the
-- earlier of the old and new report times on
relabelled as (

    select
        silver_transactions.transaction_id,
        silver_transactions.customer_id,
        silver_transactions.terminal_id,
        silver_transactions.tx_epoch_s,
        least(
            coalesce(label_changes.new_reported_epoch_s, label_changes.old_reported_epoch_s),
            coalesce(label_changes.old_reported_epoch_s, label_changes.new_reported_epoch_s)
        ) as affects_from_epoch_s

    from label_changes
    inner join silver_transactions
        on label_changes.transaction_id = silver_transactions.transaction_id

),

changed as (

    select * from customer_changes
    union all
    select * from relabelled

),

first_changes as (

    select
        min(customer_changes.tx_epoch_s) as new_from_epoch_s,
        (select min(changed.affects_from_epoch_s) from changed) as changed_from_epoch_s

    from customer_changes

),

-- the rows to recompute: the changed ones and those whose windows they enter
affected as (

    select changed.transaction_id
    from changed

    union distinct

    select silver_transactions.transaction_id
    from silver_transactions
    cross join first_changes
    inner join customer_changes
        on silver_transactions.customer_id = customer_changes.customer_id
    where
        silver_transactions.tx_epoch_s >= first_changes.new_from_epoch_s
        and silver_transactions.tx_epoch_s >= customer_changes.tx_epoch_s
        and silver_transactions.tx_epoch_s < customer_changes.tx_epoch_s + {{ customer_seconds }}

    union distinct

    select silver_transactions.transaction_id
    from silver_transactions
    cross join first_changes
    inner join changed
        on silver_transactions.terminal_id = changed.terminal_id
    where
        silver_transactions.tx_epoch_s >= first_changes.changed_from_epoch_s
        and silver_transactions.tx_epoch_s >= changed.affects_from_epoch_s
        and silver_transactions.tx_epoch_s <= changed.tx_epoch_s + {{ lookback_seconds }}

),

-- the history their features read: feature_lookback_days() before the earliest of them. Every
-- affected row is at or after a changed row's time or the time it affects from (the joins
-- above), so the earliest of those, taken over the few changed rows, is early enough (at 730
-- days of history: 0.57 -> 0.40 s per run, against a join of every silver row with affected)
history_start as (

    select
        min(least(changed.tx_epoch_s, changed.affects_from_epoch_s))
        - {{ lookback_seconds }} as after_epoch_s

    from changed

),

features as (

    select recomputed.*

    from (
        {{ transaction_features_sql(
            transactions="(
                select history.*
                from " ~ ref('int_transactions_deduplicated') ~ " as history
                cross join history_start
                where history.tx_epoch_s > history_start.after_epoch_s
            )",
            fraud_reports=ref('int_fraud_reports_deduplicated'),
            targets='affected'
        ) | indent(8) }}
    ) as recomputed

)

select * from features

{%- else %}

{{ transaction_features_sql(
    transactions=ref('int_transactions_deduplicated'),
    fraud_reports=ref('int_fraud_reports_deduplicated')
) }}

{%- endif %}
