"""Benchmark the embedded online feature state (ml.serving.memory) at the default world's size.

Simulates the default world (5,000 cards, 10,000 terminals; ``--days`` days instead of 183: the
state holds 37 days whatever the horizon), bootstraps a state with every transaction and fraud
report before the last ``--serve-days`` days (then evicts what no later transaction reads), and
serves the last days' transactions in time order:

1. single transactions: ``features()`` of one pre-built row at a time (the request path minus
   HTTP and JSON parsing), p50/p99/max in µs; plus ``TransactionRows.from_records`` of one dict;
2. batches of ``--batch`` transactions: transactions per second;
3. memory: bytes held per card, per terminal and per transaction (a ``sys.getsizeof`` walk of
   the state's containers), and tracemalloc's count of the bootstrap's allocations.

The load average is printed: on a shared machine wall times stretch.

    .venv/bin/python bench/bench_online_features.py
    .venv/bin/python bench/bench_online_features.py --days 60 --single 3000 --batch 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ml.platform.settings import SimulationSettings
from ml.serving.memory import InMemoryFeatureState
from ml.serving.rows import ReportRows, TransactionRows
from ml.serving.windows import FeatureWindows
from ml.world.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]


def state_bytes(state: InMemoryFeatureState) -> dict[str, int]:
    """Bytes of the state's containers: per part, keys and dict tables included."""
    cards = sys.getsizeof(state._cards) + sum(
        sys.getsizeof(key)
        + sys.getsizeof(card)
        + sum(sys.getsizeof(a) for a in (card.seconds, card.ids, card.amounts))
        for key, card in state._cards.items()
    )
    terminals = sys.getsizeof(state._terminals) + sum(
        sys.getsizeof(key)
        + sys.getsizeof(terminal)
        + sys.getsizeof(terminal.seconds)
        + sys.getsizeof(terminal.ids)
        + sys.getsizeof(terminal.frauds)
        + sum(sys.getsizeof(f) + sum(sys.getsizeof(v) for v in f) for f in terminal.frauds)
        for key, terminal in state._terminals.items()
    )
    index = sys.getsizeof(state._terminal_of) + sum(sys.getsizeof(k) for k in state._terminal_of)
    reports = sys.getsizeof(state._reports) + sum(
        sys.getsizeof(k) + sys.getsizeof(v) for k, v in state._reports.items()
    )
    return {"cards": cards, "terminals": terminals, "index": index, "reports": reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--serve-days", type=int, default=2)
    parser.add_argument("--single", type=int, default=3_000, help="transactions served one by one")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    windows = FeatureWindows.from_dbt_project(ROOT)
    started = time.perf_counter()
    world = simulate(SimulationSettings(days=args.days, seed=args.seed))
    print(
        f"simulated {len(world.transactions):,} transactions in {time.perf_counter() - started:.1f} s"
    )
    tx = world.transactions
    cut = np.datetime64(world.end - dt.timedelta(days=args.serve_days - 1), "us")
    history, served = tx[tx["tx_datetime"] < cut], tx[tx["tx_datetime"] >= cut]
    reports = world.fraud_reports
    known = reports[reports["reported_at"] < cut]
    history_rows, known_rows = TransactionRows.from_frame(history), ReportRows.from_frame(known)

    gc.collect()
    tracemalloc.start()
    state = InMemoryFeatureState(windows)
    started = time.perf_counter()
    state.add_transactions(history_rows)
    state.add_fraud_reports(known_rows)
    state.evict()
    bootstrap_seconds = time.perf_counter() - started
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = state.size()
    print(
        f"bootstrap: {len(history):,} transactions + {len(known):,} reports in {bootstrap_seconds:.2f} s "
        f"(under tracemalloc) -> {size}"
    )

    rows = TransactionRows.from_frame(served).in_time_order()
    singles = [rows.take(slice(k, k + 1)) for k in range(min(args.single, len(rows)))]
    timings = np.empty(len(singles))
    for k, single in enumerate(singles):
        started = time.perf_counter_ns()
        state.features(single)
        timings[k] = (time.perf_counter_ns() - started) / 1_000
    p50, p99 = np.percentile(timings, [50, 99])
    print(
        f"single transaction ({len(singles):,} served one by one): p50 {p50:.1f} µs, "
        f"p99 {p99:.1f} µs, max {timings.max():.0f} µs"
    )
    record = {
        "transaction_id": int(rows.transaction_id[0]),
        "tx_datetime": "2018-05-01 12:00:00",
        "customer_id": 1,
        "terminal_id": 1,
        "tx_amount": 12.5,
    }
    started = time.perf_counter_ns()
    for _ in range(1_000):
        TransactionRows.from_records([record])
    print(
        f"TransactionRows.from_records of one dict: {(time.perf_counter_ns() - started) / 1e6:.1f} µs"
    )

    rest = rows.take(slice(len(singles), None))
    batches = [
        rest.take(slice(k, k + args.batch))
        for k in range(0, len(rest) - args.batch + 1, args.batch)
    ]
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        state.features(batch)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    served_n = sum(len(b) for b in batches)
    print(
        f"batches of {args.batch:,}: {served_n:,} transactions in {elapsed:.2f} s wall "
        f"({cpu:.2f} s CPU) = {served_n / elapsed:,.0f} transactions/s wall, "
        f"{served_n / cpu:,.0f} per CPU second ({elapsed / len(batches) * 1e3:.1f} ms a batch)"
    )

    parts = state_bytes(state)
    size = state.size()
    print(
        f"memory (getsizeof walk, {size.cards:,} cards, {size.terminals:,} terminals, "
        f"{size.transactions:,} transactions, {size.reports:,} reports): "
        f"{sum(parts.values()) / 2**20:.1f} MiB in all; per card {parts['cards'] / size.cards:,.0f} B, "
        f"per terminal {parts['terminals'] / size.terminals:,.0f} B, transaction index "
        f"{parts['index'] / size.transactions:,.0f} B per transaction, reports {parts['reports'] / 2**10:,.0f} KiB"
    )
    print(f"tracemalloc after the bootstrap: {traced / 2**20:.1f} MiB")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
