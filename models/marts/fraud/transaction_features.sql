{#-
    The fraud model's inputs: the 15 model inputs of the Fraud Detection Handbook (chapter 3.4),
    point in time, plus the label. One row per transaction. The SQL lives in the macro
    transaction_features_sql (macros/transaction_features_sql.sql) so that tests can evaluate the
    very same statement over truncated inputs.
-#}
{{ transaction_features_sql(
    transactions=ref('int_transactions_deduplicated'),
    fraud_reports=ref('int_fraud_reports_deduplicated')
) }}
