{#-
    landing_verdicts(checked, content_columns): the CTEs that judge a landing feed's checked
    bronze rows, written where the calling model lists its CTEs (after `checked`, before its
    final projection). `checked` is the CTE of the feed's parsed rows, one per bronze row, with
    transaction_id, content_columns, the load metadata (_source_file, _landed_date, _loaded_at)
    and row_reason (the first row rule the row breaks, null when none). Defines:
      versions  one row per transaction_id with valid rows: is_conflicting when those rows do
                not all carry the same content_columns;
      judged    the checked rows with quarantine_reason: row_reason, else conflicting_duplicate
                for every valid row of a conflicting transaction_id;
      verdicts  the judged rows with landing_outcome (quarantined when quarantine_reason is
                set; of the remaining copies of a transaction_id the first landed, by
                _loaded_at, _landed_date, _source_file, is kept and the others are
                exact_duplicate) and kept_source_file (the file of the kept copy, null when
                quarantined).
    The same judgement for every feed: int_transactions_validated, int_fraud_reports_validated.
-#}
{% macro landing_verdicts(checked, content_columns) -%}
    {%- set content_differs = [] -%}
    {%- for column in content_columns -%}
        {%- do content_differs.append('min(' ~ checked ~ '.' ~ column ~ ') <> max(' ~ checked ~ '.' ~ column ~ ')') -%}
    {%- endfor -%}
-- transaction ids whose valid rows do not all carry the same content
versions as (

    select
        {{ checked }}.transaction_id,
        (
            {{ content_differs | join('\n            or ') }}
        ) as is_conflicting

    from {{ checked }}
    where {{ checked }}.row_reason is null
    group by {{ checked }}.transaction_id

),

judged as (

    select
        {{ checked }}.*,
        coalesce(
            {{ checked }}.row_reason,
            case when versions.is_conflicting then 'conflicting_duplicate' end
        ) as quarantine_reason

    from {{ checked }}
    left join versions
        on {{ checked }}.transaction_id = versions.transaction_id

),

verdicts as (

    select
        judged.*,
        case
            when judged.quarantine_reason is not null then 'quarantined'
            -- the first landed copy of a valid transaction_id is kept
            when row_number() over (
                partition by judged.transaction_id, judged.quarantine_reason
                order by judged._loaded_at, judged._landed_date, judged._source_file
            ) = 1 then 'kept'
            else 'exact_duplicate'
        end as landing_outcome,
        case
            when judged.quarantine_reason is null
                then first_value(judged._source_file) over (
                    partition by judged.transaction_id, judged.quarantine_reason
                    order by judged._loaded_at, judged._landed_date, judged._source_file
                )
        end as kept_source_file

    from judged

)
{%- endmacro %}
