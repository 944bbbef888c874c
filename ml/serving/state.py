"""The interface of an online feature state.

What a state holds, per the feature SQL (macros/transaction_features_sql.sql), for windows of
``FeatureWindows`` (vars of the dbt project):

* per card: its transactions (time, transaction_id, amount) of the longest customer window;
* per terminal: its transactions (time, transaction_id) of the look-back (longest terminal
  window + delay) and those of them that are frauds, with their report time;
* the known fraud reports (transaction_id -> reported_at), including those whose transaction
  is not known yet (silver's 'awaiting_transaction').

Every feature is a function of the state's contents and the transaction itself only: the
windows are bounded on both sides ((t - n days, t] with the tie rule, (t - n - d, t - d]) and a
report counts only if ``reported_at <= tx_datetime``, so the order in which rows reach the state
does not matter, as long as a transaction and the reports it may count are there when it is
scored. That is what lets several server processes share one store (Redis, Postgres/Lakebase)
implementing this interface, and a restart rebuild the state from the warehouse plus the log
of transactions served since (``add_transactions`` skips ids it already holds).

The embedded implementation (ml.serving.memory.InMemoryFeatureState) is the default.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ml.serving.rows import FeatureBatch, ReportRows, TransactionRows
from ml.serving.windows import FeatureWindows


@dataclass(frozen=True)
class StateSize:
    """How much a state holds (for a /version endpoint and capacity planning)."""

    cards: int
    terminals: int
    transactions: int
    frauds: int
    reports: int


class FeatureState(ABC):
    """Online features of card transactions, equal to gold.transaction_features."""

    windows: FeatureWindows

    @abstractmethod
    def features(self, transactions: TransactionRows) -> FeatureBatch:
        """Score a batch: each transaction's features as of itself (itself included), the batch
        taken in time order (tie rule: same second, lower transaction_id first) so that each
        sees the earlier ones; the transactions are recorded (authorised means happened).
        Rows come back in the input order."""

    @abstractmethod
    def add_transactions(self, transactions: TransactionRows) -> int:
        """Record transactions without scoring them (bootstrap, another channel, a restart's
        log); returns how many were new (known transaction_ids are skipped)."""

    @abstractmethod
    def add_fraud_reports(self, reports: ReportRows) -> int:
        """Record fraud reports (fed at their reported_at, or earlier: a report counts for a
        transaction only from its reported_at on); returns how many were new."""

    @abstractmethod
    def evict(self, now: dt.datetime | None = None) -> int:
        """Drop what no transaction at or after ``now`` (default: ``as_of``) can read;
        returns how many transactions were dropped."""

    @abstractmethod
    def size(self) -> StateSize:
        """Counts of what the state holds."""

    @property
    @abstractmethod
    def as_of(self) -> dt.datetime | None:
        """The latest transaction time the state has seen (None when empty)."""

    def features_one(self, transaction: TransactionRows) -> dict[str, float]:
        """Score a single transaction; its features by name."""
        return self.features(transaction).row(0)
