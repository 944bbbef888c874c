"""Feed transactions and fraud reports to a state in time order, as a server would see them.

Events are taken by time; at the same instant a report goes before a transaction (the SQL counts
a report at a transaction when reported_at <= tx_datetime), and same-second transactions go by
transaction_id (the tie rule). Consecutive transactions are scored as one batch. Used by the
skew test (a day of the landing files replayed against the gold table) and by a restart that
re-feeds the log of served transactions.
"""

from __future__ import annotations

import numpy as np

from ml.serving.rows import FeatureBatch, ReportRows, TransactionRows
from ml.serving.state import FeatureState

_REPORT, _TRANSACTION = 0, 1


def serve_in_time_order(
    state: FeatureState,
    transactions: TransactionRows,
    reports: ReportRows,
    batch_size: int = 1_000,
) -> FeatureBatch:
    """Score ``transactions`` and record ``reports`` interleaved in time order; the features
    come back in the order they were served."""
    times = np.concatenate([reports.reported_us, transactions.tx_us])
    kinds = np.concatenate(
        [np.full(len(reports), _REPORT), np.full(len(transactions), _TRANSACTION)]
    )
    ids = np.concatenate([reports.transaction_id, transactions.transaction_id])
    rows = np.concatenate([np.arange(len(reports)), np.arange(len(transactions))])
    order = np.lexsort((ids, kinds, times))
    kinds, rows = kinds[order], rows[order]
    # runs of consecutive events of one kind
    starts = np.flatnonzero(np.r_[True, kinds[1:] != kinds[:-1]])
    ends = np.r_[starts[1:], len(kinds)]
    scored: list[FeatureBatch] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if kinds[start] == _REPORT:
            state.add_fraud_reports(reports.take(rows[start:end]))
            continue
        for chunk in range(start, end, batch_size):
            scored.append(
                state.features(transactions.take(rows[chunk : min(end, chunk + batch_size)]))
            )
    columns = state.windows.columns()
    if not scored:
        return FeatureBatch(np.empty(0, np.int64), columns, np.empty((0, len(columns))))
    return FeatureBatch(
        np.concatenate([batch.transaction_id for batch in scored]),
        columns,
        np.concatenate([batch.values for batch in scored]),
    )
