"""Benchmark ``ml replay``: seconds per replayed day, and where they go.

Replays a small world (default: 500 customers x 1,000 terminals, 50 warm-up days, 5 replayed
days) in a scratch folder, once per dbt mode:

* ``worker`` (the default on DuckDB): one dbt process that imports dbt and parses the project
  once, then builds every day with the parsed manifest;
* ``subprocess``: one ``dbt build`` subprocess per build (ml.platform.dbt), which imports dbt and
  checks the parse each time.

Prints, per mode, the bootstrap's seconds and the median seconds of a replayed day, split into
the two dbt builds, ``ml score`` and the rest of the replay (landing files, monitoring reads,
MLflow run and events). No retraining happens in the replayed days (schedule and triggers off),
so days are comparable.

    .venv/bin/python bench/bench_replay.py
    .venv/bin/python bench/bench_replay.py --days 10 --modes worker
    .venv/bin/python bench/bench_replay.py --workdir /tmp/replay-bench   # keep the files
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

from common import add_workdir_argument, workdir_of
from rich.console import Console
from rich.table import Table

from ml.operations.replay import replay
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2018, 4, 1)
STEPS = ["dbt_medallion", "score", "dbt_downstream"]


def _settings(root: Path, args: argparse.Namespace, worker: bool):
    return load_settings(
        dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT), "target": "local"},
        simulation={
            "customers": args.customers,
            "terminals": args.terminals,
            "days": args.warmup_days + args.days,
            "start": START,
            "seed": 0,
        },
        landing={"root": str(root / "landing")},
        mlflow={
            "tracking_uri": f"sqlite:///{root}/mlflow.db",
            "artifact_location": str(root / "artifacts"),
            "experiment": "bench-replay",
        },
        # a small world has few frauds a day: Card Precision@100 cannot reach the default minimum
        validation={"min_card_precision_at_100": 0.0, "min_average_precision": 0.2},
        replay={"warmup_days": args.warmup_days, "dbt_worker": worker},
        retraining={"every_days": 0, "psi_threshold": None, "min_average_precision": None},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--warmup-days", type=int, default=50)
    parser.add_argument("--days", type=int, default=5, help="replayed days")
    parser.add_argument("--modes", default="worker,subprocess", help="worker, subprocess or both")
    add_workdir_argument(parser)
    args = parser.parse_args()
    console = Console()
    console.print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")

    table = Table(
        title=f"ml replay: {args.customers} customers x {args.terminals} terminals, "
        f"{args.warmup_days} warm-up days, {args.days} replayed days (median of the days)"
    )
    for column in (
        "dbt mode",
        "bootstrap s",
        "day s",
        *(f"{s} s" for s in STEPS),
        "rest s",
        "wall s",
    ):
        table.add_column(column, justify="right")
    with workdir_of(args, "bench-replay-") as base:
        for mode in args.modes.split(","):
            root = (base / mode).resolve()
            root.mkdir(parents=True, exist_ok=True)
            os.environ["FRAUDOPS_DUCKDB_PATH"] = str(root / "warehouse.duckdb")
            os.environ["DBT_TARGET_PATH"] = str(root / "target")
            settings = _settings(root, args, worker=mode == "worker")
            started = time.perf_counter()
            result = replay(Runtime.build(settings))
            wall = time.perf_counter() - started
            if not result.days:
                raise SystemExit(f"{root} holds a finished replay already; use another --workdir")
            totals = [d.seconds["total"] for d in result.days]
            steps = {
                s: statistics.median(d.seconds.get(s, 0.0) for d in result.days) for s in STEPS
            }
            rest = statistics.median(
                d.seconds["total"] - sum(d.seconds.get(s, 0.0) for s in STEPS) for d in result.days
            )
            bootstrap = result.bootstrap.seconds["total"] if result.bootstrap else float("nan")
            table.add_row(
                mode,
                f"{bootstrap:.1f}",
                f"{statistics.median(totals):.1f}",
                *(f"{steps[s]:.2f}" for s in STEPS),
                f"{rest:.2f}",
                f"{wall:.0f}",
            )
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
