"""The embedded online feature state: everything in this process's memory.

Per card, per terminal: sorted compact arrays (``array.array``: 8 bytes a value) searched by
bisection; the few frauds of a terminal in a short list. A transaction's features cost a
handful of bisections, one pass over its card's last 30 days (tens of amounts) and one over its
terminal's known frauds (usually none): microseconds, no numpy call per row.

The SQL it mirrors is macros/transaction_features_sql.sql, on whole epoch seconds s (floored):

* customer windows: the card's rows with s' in (s - n days, s], a same-second row only if its
  transaction_id <= the current one (the tie rule), the current row included; mean = sum /
  count; over the longest window the max and the population variance (z-score 0 when it is 0);
* terminal windows: the terminal's rows with s' in (s - n - d days, s - d days] (every
  same-second row at the bound), the risk = those of them reported as fraud at or before
  tx_datetime (microseconds, reported_at <= tx_datetime) / their count, 0.0 when empty;
* reported frauds: the terminal's OTHER rows with s' in (s - d days, s), or s' = s with a lower
  transaction_id, that are frauds reported at or before tx_datetime.

Thread safety: one lock around each public method, so a web app may call it from several
threads of one process.

Not repeated from silver's checks (the server validates the landing contract before calling):
a transaction_id already held is not recorded again (its first copy stays); a second report of a
transaction is ignored; a report dated before its transaction is not rejected.
"""

from __future__ import annotations

import datetime as dt
import threading
from array import array
from bisect import bisect_right, insort

import numpy as np

from ml.serving.rows import FeatureBatch, ReportRows, TransactionRows
from ml.serving.state import FeatureState, StateSize
from ml.serving.windows import SECONDS_PER_DAY, FeatureWindows

_US = 1_000_000
_EPOCH = dt.datetime(1970, 1, 1)


class _Card:
    """A card's transactions of the longest customer window, sorted by (second, id)."""

    __slots__ = ("amounts", "ids", "seconds")

    def __init__(self) -> None:
        self.seconds = array("q")
        self.ids = array("q")
        self.amounts = array("d")


class _Terminal:
    """A terminal's transactions of the look-back, sorted by (second, id), and its frauds
    (second, id, reported_us) with a known report, sorted the same way."""

    __slots__ = ("frauds", "ids", "seconds")

    def __init__(self) -> None:
        self.seconds = array("q")
        self.ids = array("q")
        self.frauds: list[tuple[int, int, int]] = []


def _insert_position(seconds: array, ids: array, second: int, tx_id: int) -> int:
    """Where (second, tx_id) goes in rows sorted by (second, id): after every earlier second and
    every same-second row with a lower id."""
    position = bisect_right(seconds, second)
    while position and seconds[position - 1] == second and ids[position - 1] > tx_id:
        position -= 1
    return position


def _insert(seconds: array, ids: array, second: int, tx_id: int) -> int:
    if not seconds or seconds[-1] < second or (seconds[-1] == second and ids[-1] < tx_id):
        seconds.append(second)
        ids.append(tx_id)
        return len(seconds) - 1
    position = _insert_position(seconds, ids, second, tx_id)
    seconds.insert(position, second)
    ids.insert(position, tx_id)
    return position


class InMemoryFeatureState(FeatureState):
    """The default :class:`FeatureState`: dicts of per-card and per-terminal arrays."""

    def __init__(self, windows: FeatureWindows):
        self.windows = windows
        self._columns = windows.columns()
        # window spans in seconds, computed once for the hot path
        self._customer_spans = [n * SECONDS_PER_DAY for n in windows.customer_days]
        self._longest_span = windows.longest_customer_days * SECONDS_PER_DAY
        self._longest_index = windows.customer_days.index(windows.longest_customer_days)
        self._delay_span = windows.delay_days * SECONDS_PER_DAY
        self._terminal_spans = [n * SECONDS_PER_DAY for n in windows.terminal_days]
        self._cards: dict[int, _Card] = {}
        self._terminals: dict[int, _Terminal] = {}
        self._terminal_of: dict[int, int] = {}  # transaction_id -> terminal_id, for the reports
        self._reports: dict[int, int] = {}  # transaction_id -> reported_us
        self._latest_us: int | None = None
        self._lock = threading.Lock()

    # -- writes ---------------------------------------------------------------------------

    def add_transactions(self, transactions: TransactionRows) -> int:
        with self._lock:
            return self._add(transactions)

    def _add(self, transactions: TransactionRows) -> int:
        added = 0
        for tx_id, tx_us, customer_id, terminal_id, amount in transactions.tuples():
            if tx_id in self._terminal_of:
                continue
            second = tx_us // _US
            card = self._cards.get(customer_id)
            if card is None:
                card = self._cards[customer_id] = _Card()
            card.amounts.insert(_insert(card.seconds, card.ids, second, tx_id), amount)
            terminal = self._terminals.get(terminal_id)
            if terminal is None:
                terminal = self._terminals[terminal_id] = _Terminal()
            _insert(terminal.seconds, terminal.ids, second, tx_id)
            self._terminal_of[tx_id] = terminal_id
            reported_us = self._reports.get(tx_id)
            if reported_us is not None:  # reported before it reached this state
                insort(terminal.frauds, (second, tx_id, reported_us))
            if self._latest_us is None or tx_us > self._latest_us:
                self._latest_us = tx_us
            added += 1
        return added

    def add_fraud_reports(self, reports: ReportRows) -> int:
        with self._lock:
            added = 0
            for tx_id, reported_us in reports.tuples():
                if tx_id in self._reports:
                    continue
                self._reports[tx_id] = reported_us
                added += 1
                terminal_id = self._terminal_of.get(tx_id)
                if terminal_id is not None:
                    terminal = self._terminals[terminal_id]
                    second = terminal.seconds[terminal.ids.index(tx_id)]
                    insort(terminal.frauds, (second, tx_id, reported_us))
            return added

    def evict(self, now: dt.datetime | None = None) -> int:
        with self._lock:
            if now is None:
                if self._latest_us is None:
                    return 0
                now_second = self._latest_us // _US
            else:
                now_second = (now - _EPOCH) // dt.timedelta(seconds=1)
            return self._evict(now_second)

    def _evict(self, now_second: int) -> int:
        # a row at s' is read by a transaction at t >= now only if s' > t - window >= now - window
        card_cutoff = now_second - self.windows.longest_customer_days * SECONDS_PER_DAY
        terminal_cutoff = now_second - self.windows.lookback_days * SECONDS_PER_DAY
        for customer_id, card in list(self._cards.items()):
            if card.seconds[0] <= card_cutoff:
                keep = bisect_right(card.seconds, card_cutoff)
                del card.seconds[:keep], card.ids[:keep], card.amounts[:keep]
                if not card.seconds:
                    del self._cards[customer_id]
        dropped = 0
        for terminal_id, terminal in list(self._terminals.items()):
            if terminal.seconds[0] <= terminal_cutoff:
                keep = bisect_right(terminal.seconds, terminal_cutoff)
                for tx_id in terminal.ids[:keep]:
                    del self._terminal_of[tx_id]
                del terminal.seconds[:keep], terminal.ids[:keep]
                terminal.frauds = [f for f in terminal.frauds if f[0] > terminal_cutoff]
                dropped += keep
                if not terminal.seconds:
                    del self._terminals[terminal_id]
        # a report is never earlier than its transaction
        cutoff_us = (terminal_cutoff + 1) * _US
        for tx_id in [t for t, r in self._reports.items() if r < cutoff_us]:
            if tx_id not in self._terminal_of:
                del self._reports[tx_id]
        return dropped

    # -- reads ----------------------------------------------------------------------------

    def features(self, transactions: TransactionRows) -> FeatureBatch:
        with self._lock:
            # every window is bounded on both sides: recording the whole batch first gives each
            # row exactly the earlier rows (in time, then transaction_id order)
            self._add(transactions)
            values = [self._row(*row) for row in transactions.tuples()]
            return FeatureBatch(
                transactions.transaction_id.copy(),
                self._columns,
                np.array(values, dtype=np.float64).reshape(len(values), len(self._columns)),
            )

    @staticmethod
    def _customer_end(card: _Card, second: int, tx_id: int) -> int:
        """End of the card's rows in its windows of (second, tx_id): every earlier second, and
        of this second the rows with an id up to tx_id (the tie rule)."""
        seconds, ids = card.seconds, card.ids
        end = bisect_right(seconds, second)
        while end and seconds[end - 1] == second and ids[end - 1] > tx_id:
            end -= 1
        return end

    def _row(
        self, tx_id: int, tx_us: int, customer_id: int, terminal_id: int, amount: float
    ) -> list[float]:
        second = tx_us // _US
        day, second_of_day = divmod(second, SECONDS_PER_DAY)
        out = [
            amount,
            1.0 if (day + 3) % 7 >= 5 else 0.0,  # 1970-01-01 was a Thursday (Monday = 0)
            1.0 if second_of_day < 7 * 3600 else 0.0,  # hour <= 6
        ]

        # the customer windows (t - n days, t], ties: same second and id <= this one
        card = self._cards[customer_id]
        seconds = card.seconds
        end = self._customer_end(card, second, tx_id)
        longest_start = bisect_right(seconds, second - self._longest_span, 0, end)
        amounts = card.amounts[longest_start:end].tolist()
        means = []
        for span in self._customer_spans:
            start = bisect_right(seconds, second - span, longest_start, end)
            count = end - start
            mean = sum(amounts[start - longest_start :]) / count
            means.append(mean)
            out += (count, mean)

        # the terminal windows (t - n - d days, t - d days] and its reported frauds
        terminal = self._terminals[terminal_id]
        terminal_seconds = terminal.seconds
        window_end = second - self._delay_span
        last = bisect_right(terminal_seconds, window_end)
        spans = self._terminal_spans
        frauds_known = [0] * len(spans)
        reported = 0
        for fraud_second, fraud_id, reported_us in terminal.frauds:
            if reported_us > tx_us or fraud_second > second:
                continue
            if fraud_second <= window_end:
                for w, span in enumerate(spans):
                    if fraud_second > window_end - span:
                        frauds_known[w] += 1
            elif fraud_second < second or fraud_id < tx_id:
                reported += 1
        for w, span in enumerate(spans):
            count = last - bisect_right(terminal_seconds, window_end - span, 0, last)
            out += (count, frauds_known[w] / count if count else 0.0)

        # extra: ratios, z-score and max over the longest customer window, reported frauds
        out += [amount / mean for mean in means]
        mean = means[self._longest_index]
        highest = max(amounts)
        if highest == min(amounts):  # one transaction, or equal amounts: std 0
            out.append(0.0)
        else:  # two passes: the population variance without cancellation
            variance = sum([(a - mean) * (a - mean) for a in amounts]) / len(amounts)
            out.append((amount - mean) / variance**0.5 if variance > 0 else 0.0)
        out += (highest, reported)
        return out

    # -- introspection --------------------------------------------------------------------

    def size(self) -> StateSize:
        with self._lock:
            return StateSize(
                cards=len(self._cards),
                terminals=len(self._terminals),
                transactions=len(self._terminal_of),
                frauds=sum(len(t.frauds) for t in self._terminals.values()),
                reports=len(self._reports),
            )

    @property
    def as_of(self) -> dt.datetime | None:
        if self._latest_us is None:
            return None
        return _EPOCH + dt.timedelta(microseconds=self._latest_us)
