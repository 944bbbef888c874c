{#-
    feature_lookback_days(): how many days of history before a transaction its features read —
    the longest customer window, or the longest terminal window plus the terminal delay,
    whichever is longer (37 with the handbook's vars). Evaluating transaction_features_sql over
    the transactions of (t0 - look-back, t1] gives final features for those of (t0, t1].
-#}
{% macro feature_lookback_days() -%}
    {%- set customer_days = var('customer_windows_days') | max -%}
    {%- set terminal_days = (var('terminal_windows_days') | max) + var('terminal_delay_days') -%}
    {{- return([customer_days, terminal_days] | max) -}}
{%- endmacro %}
