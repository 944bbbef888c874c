"""Benchmark `ml simulate` at its default size (5,000 customers, 10,000 terminals, 183 days).

Measures, in a scratch folder:
1. in process: simulate the world, then write all 366 landing files (best of ``--repeat`` runs);
2. end to end: the `ml simulate` command in a fresh Python process (imports included).

Prints seconds and rows/s for each, and the dataset's size, fraud rate and scenario counts
(the Fraud Detection Handbook reports ~1.75M transactions, ~0.84 % fraud, ~1k/9k/4.6k).

    .venv/bin/python bench/bench_simulator.py [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.platform.settings import SimulationSettings
from ml.world.landing import simulate_landing

BUDGET_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = SimulationSettings(seed=args.seed)

    with tempfile.TemporaryDirectory(prefix="bench_simulator_") as scratch:
        root = Path(scratch) / "landing"
        runs = []
        for _ in range(args.repeat):
            shutil.rmtree(root, ignore_errors=True)
            started = time.perf_counter()
            result = simulate_landing(settings, root)
            runs.append((time.perf_counter() - started, result))
        total, result = min(runs, key=lambda run: run[0])

        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from ml.cli import app; app()",
                "simulate",
                "--seed",
                str(args.seed),
                "--landing-root",
                str(root),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=scratch,
        )
        cli_seconds = time.perf_counter() - started
        files = sum(1 for _ in root.rglob("*.parquet"))
        megabytes = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e6

    rows = result.transactions
    scenarios = result.frauds_by_scenario
    print(
        f"dataset: {rows:,} transactions over {len(result.days)} days, {result.frauds:,} frauds "
        f"({result.fraud_rate:.3%}), scenarios 1/2/3 = {scenarios.get(1, 0):,} / {scenarios.get(2, 0):,} / "
        f"{scenarios.get(3, 0):,}; {result.fraud_reports:,} reports landed, {result.reports_pending:,} pending"
    )
    print(f"landing: {files} parquet files, {megabytes:.1f} MB")
    print(
        f"in process (best of {args.repeat}): {total:.2f} s = simulate {result.simulate_seconds:.2f} s "
        f"+ write {result.write_seconds:.2f} s; {rows / total:,.0f} rows/s"
    )
    print(
        f"`ml simulate` in a fresh process: {cli_seconds:.2f} s; {rows / cli_seconds:,.0f} rows/s"
    )
    verdict = "within" if cli_seconds <= BUDGET_SECONDS else "OVER"
    print(f"budget: {verdict} {BUDGET_SECONDS:.0f} s end to end")


if __name__ == "__main__":
    main()
