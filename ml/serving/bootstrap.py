"""Fill an online feature state from silver, through the warehouse (ml.warehouse).

The state needs, before the newest landed transaction (at second s), the transactions of the
look-back (s' > s - feature_lookback_days() days: what the feature SQL reads, and so what any
later transaction's windows can hold) and every fraud report known by then (those of the
look-back's transactions: a report is never earlier than its transaction, so the reports
with reported_epoch_s in the look-back cover them, those still awaiting their transaction too).
A restart is the same bootstrap followed by ``add_transactions`` of the transactions served
since (known ids are skipped).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.platform import tables
from ml.platform.warehouse import Warehouse
from ml.serving.memory import InMemoryFeatureState
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.state import FeatureState
from ml.serving.windows import SECONDS_PER_DAY, FeatureWindows

SILVER_TRANSACTIONS = tables.TRANSACTIONS
SILVER_FRAUD_REPORTS = tables.FRAUD_REPORTS
TRANSACTION_COLUMNS = list(tables.TRANSACTION_COLUMNS)
REPORT_COLUMNS = ["transaction_id", "reported_at", "reported_epoch_s"]


def bootstrap_from_frames(
    state: FeatureState, transactions: pd.DataFrame, reports: pd.DataFrame
) -> FeatureState:
    """Record silver-shaped ``transactions`` and ``reports`` in ``state``, then evict what
    no later transaction reads."""
    state.add_transactions(TransactionRows.from_frame(transactions))
    state.add_fraud_reports(ReportRows.from_frame(reports))
    state.evict()
    return state


def read_bootstrap_rows(
    warehouse: Warehouse, windows: FeatureWindows
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Silver's transactions of the look-back before its newest one, and the reports dated in
    it (every report of those transactions, and those still awaiting their transaction)."""
    warehouse.require(
        SILVER_TRANSACTIONS, "build silver first: dbt build --select +int_transactions_deduplicated"
    )
    newest = warehouse.scalar(f"select max(tx_epoch_s) from {SILVER_TRANSACTIONS}")
    if newest is None:
        return pd.DataFrame(columns=TRANSACTION_COLUMNS), pd.DataFrame(columns=REPORT_COLUMNS)
    first_second = int(newest) - windows.lookback_days * SECONDS_PER_DAY  # exclusive
    first_day = dt.date(1970, 1, 1) + dt.timedelta(days=first_second // SECONDS_PER_DAY)
    transactions = warehouse.read(SILVER_TRANSACTIONS, TRANSACTION_COLUMNS, "tx_date", first_day)
    reports = warehouse.read(SILVER_FRAUD_REPORTS, REPORT_COLUMNS, "report_date", first_day)
    return (
        transactions.loc[transactions["tx_epoch_s"] > first_second].reset_index(drop=True),
        reports.loc[reports["reported_epoch_s"] > first_second].reset_index(drop=True),
    )


def bootstrap_from_warehouse(
    warehouse: Warehouse, windows: FeatureWindows, state: FeatureState | None = None
) -> FeatureState:
    """A state (the embedded one by default) holding silver's look-back before its newest
    transaction, and the reports known by then."""
    state = state if state is not None else InMemoryFeatureState(windows)
    transactions, reports = read_bootstrap_rows(warehouse, windows)
    return bootstrap_from_frames(state, transactions, reports)
