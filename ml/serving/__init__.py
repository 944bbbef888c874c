"""Online features: each transaction's features computed while it is authorised, equal to
gold.transaction_features (models/marts/fraud/transaction_features.sql) for the same transaction.

* ``windows`` — the window sizes, delay and look-back, read from the dbt project (one definition);
* ``rows`` — the columnar inputs (landing-contract transactions, fraud reports) and outputs;
* ``state`` — the interface of an online feature state (shared stores implement it later);
* ``memory`` — the embedded, in-process implementation (the default);
* ``feed`` — replays transactions and reports in time order (skew test, restart from a log);
* ``bootstrap`` — fills a state from silver through the warehouse.
"""
