{#-
    days_range_frame(days_back, delay_days=0): the window frame clause selecting the rows whose
    order key (integer epoch seconds) lies in (t - days_back - delay_days days, t - delay_days days],
    t being the current row's key: left-open, right-closed, in whole seconds. With no delay the
    frame ends at the current row, peers (rows of the same second) included.

    `over (partition by customer_id order by tx_epoch_s {{ days_range_frame(7) }})` is the
    customer's last 7 days. RANGE frames with integer offsets read the same on DuckDB and Spark.
-#}
{% macro days_range_frame(days_back, delay_days=0) -%}
    {%- set seconds_per_day = 86400 -%}
    {%- if days_back is not number or days_back < 1 or delay_days is not number or delay_days < 0 -%}
        {{ exceptions.raise_compiler_error(
            "days_range_frame needs days_back >= 1 and delay_days >= 0 (whole days), got "
            ~ days_back ~ " and " ~ delay_days
        ) }}
    {%- endif -%}
    range between {{ (days_back + delay_days) * seconds_per_day - 1 }} preceding and
    {%- if delay_days == 0 %} current row
    {%- else %} {{ delay_days * seconds_per_day }} preceding
    {%- endif -%}
{%- endmacro %}
