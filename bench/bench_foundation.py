"""Benchmark the data foundation: simulator, dbt bronze -> gold, SQL features vs pandas.

In one run, in a scratch folder (default size: 5,000 customers x 10,000 terminals x 183 days,
~1.78M transactions):

1. simulate the world (``ml.world.simulator.simulate``) and write its landing files
   (``ml.world.landing.write_landing``);
2. ``dbt seed`` then ``dbt run --selector medallion`` into a fresh DuckDB file: bronze -> silver
   -> gold (features, KPIs, data quality), with each model's execution time from run_results.json;
3. the same 15 features in plain pandas (bench/pandas_features.py, handbook-style
   ``groupby(...).rolling('7D', on=...)``) on the same silver tables, and a check that both give
   identical values (counts equal, floats within 1e-9);
4. the incremental step: in a second warehouse, every day but the last is landed and built, then
   the last day lands and ``dbt run --selector medallion`` updates every layer incrementally; the
   sum of its models' execution times is compared with the full build's (target: a one-day step
   costs <= 10 % of a full build), per model too, and its feature table with the full build's
   (equal).

Both medallion runs use one dbt thread. A model's execution time is its wall time, so with two
threads two nodes running at once each count the other's work (a one-day step's models summed
to 6.3 s on two threads, 4.2 s on one); DuckDB spreads each statement over the cores itself, so
the full build is not slower on one thread (run elapsed 20.0 s vs 19.4 s on two, measured here).

Prints seconds and rows/s for each, and how many times faster the transaction_features model is
than pandas (target: >= 30x at the default size). Exits 1 if the features differ.

    .venv/bin/python bench/bench_foundation.py
    .venv/bin/python bench/bench_foundation.py --customers 500 --terminals 1000 --days 60
    .venv/bin/python bench/bench_foundation.py --workdir /tmp/foundation   # keep the files
    .venv/bin/python bench/bench_foundation.py --repeat 3   # best of 3 for the model and pandas
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandas_features  # bench/ is the script's folder, hence on sys.path
from rich.console import Console
from rich.table import Table

from ml.platform import tables
from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import SimulationSettings, load_settings
from ml.world.landing import write_landing
from ml.world.simulator import SimulatedWorld, simulate

REPO_ROOT = Path(__file__).resolve().parents[1]

TARGET_SPEEDUP = 30.0
TARGET_INCREMENTAL_SHARE = 0.10
# the medallion: bronze, silver, gold features, KPIs and data quality (selectors.yml)
MEDALLION = ["--selector", "medallion", "--threads", "1"]  # one thread: see the docstring
SILVER_TRANSACTIONS = tables.TRANSACTIONS
SILVER_REPORTS = "silver.int_fraud_reports_deduplicated"
FEATURE_TABLE = "gold.transaction_features"


def _dbt_env(workdir: Path) -> dict[str, str]:
    """dbt's environment for a warehouse built in ``workdir`` from the landing files under it."""
    return {
        "FRAUDOPS_DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
        "FRAUDOPS_LANDING_ROOT": str(workdir / "landing"),
        "DBT_LOG_PATH": str(workdir / "logs"),
    }


def _dbt(args: list[str], workdir: Path, env: dict[str, str]) -> DbtResult:
    """``dbt ARGS`` on the repository's project, its target folder in ``workdir``."""
    return run_dbt(args, project_dir=REPO_ROOT, target_path=workdir / "target", env=env)


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def _time_compiled_model(workdir: Path, repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of transaction_features' compiled SELECT run in this process.

    The SELECT dbt compiled is materialised into a scratch table of the same DuckDB file, without
    dbt around it, so its CPU time (all DuckDB threads) can be read: on a busy machine CPU time
    says more than wall time.
    """
    import duckdb  # the benchmark is about the DuckDB target

    compiled = next((workdir / "target" / "compiled").rglob("transaction_features.sql"))
    select = compiled.read_text()
    walls, cpus = [], []
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            con.execute(f"create or replace table main.bench_transaction_features as {select}")
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        con.execute("drop table main.bench_transaction_features")
    return min(walls), min(cpus)


def run(args: argparse.Namespace, workdir: Path, console: Console) -> bool:
    settings = SimulationSettings(
        customers=args.customers, terminals=args.terminals, days=args.days, seed=args.seed
    )
    landing_root = workdir / "landing"
    env = _dbt_env(workdir)
    load_before = os.getloadavg()[0]

    # (a) simulator
    started = time.perf_counter()
    world = simulate(settings)
    simulated = time.perf_counter()
    landed = write_landing(world, landing_root)
    written = time.perf_counter()
    n_landed = landed.transactions

    # (b) dbt: landing files -> bronze -> silver -> gold on a fresh DuckDB file
    _dbt(["seed"], workdir, env)
    seeded = time.perf_counter()
    result = _dbt(["run", *MEDALLION], workdir, env)
    dbt_seconds = time.perf_counter() - seeded
    model_times = {
        unique_id.split(".")[-1]: float(node["execution_time"])
        for unique_id, node in result.nodes.items()
    }
    # best of --repeat: the model again on its own
    feature_runs = [model_times["transaction_features"]]
    for _ in range(args.repeat - 1):
        rerun = _dbt(["run", "--select", "transaction_features", "--full-refresh"], workdir, env)
        feature_runs.append(rerun.timing("transaction_features"))

    # (c) pandas on the same silver rows, then the equality check
    os.environ.update(env)  # the warehouse module reads the dbt profile, which reads these
    warehouse_settings = load_settings(
        dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)}
    )
    with Runtime.build(warehouse_settings).warehouse(read_only=True) as warehouse:
        transactions = warehouse.read(SILVER_TRANSACTIONS)
        reports = warehouse.read(SILVER_REPORTS)
        sql_features = warehouse.read(FEATURE_TABLE)
    rows = len(transactions)
    engine_wall, engine_cpu = _time_compiled_model(workdir, args.repeat)
    pandas_runs, pandas_cpu = [], []
    for _ in range(args.repeat):
        pandas_cpu_started = time.process_time()
        pandas_started = time.perf_counter()
        pandas_features_frame = pandas_features.compute_features(
            transactions,
            reports,
            customer_windows=args.customer_windows,
            terminal_windows=args.terminal_windows,
            delay_days=args.delay_days,
        )
        pandas_runs.append(time.perf_counter() - pandas_started)
        pandas_cpu.append(time.process_time() - pandas_cpu_started)
    pandas_seconds = min(pandas_runs)
    comparison = pandas_features.compare(
        sql_features,
        pandas_features_frame,
        [
            *pandas_features.feature_columns(args.customer_windows, args.terminal_windows),
            *pandas_features.extra_feature_columns(args.customer_windows, args.delay_days),
            "tx_fraud",
        ],
    )
    incremental = _incremental_step(world, workdir / "incremental", sql_features)
    load_after = os.getloadavg()[0]

    table = Table(title="bench_foundation", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("rows/s", justify="right")
    table.add_row(
        "simulate (in memory)", f"{simulated - started:.2f}", _rate(n_landed, simulated - started)
    )
    table.add_row(
        "write landing files", f"{written - simulated:.2f}", _rate(n_landed, written - simulated)
    )
    table.add_row("dbt run, bronze -> gold (wall)", f"{dbt_seconds:.2f}", _rate(rows, dbt_seconds))
    for name, seconds in model_times.items():
        table.add_row(f"  {name}", f"{seconds:.2f}", _rate(rows, seconds))
    features_seconds = min(feature_runs)
    if args.repeat > 1:
        table.add_row(
            f"  transaction_features, best of {args.repeat}",
            f"{features_seconds:.2f}",
            _rate(rows, features_seconds),
        )
    best = f", best of {args.repeat}" if args.repeat > 1 else ""
    table.add_row(
        f"pandas features (groupby-rolling{best})",
        f"{pandas_seconds:.2f}",
        _rate(rows, pandas_seconds),
    )
    console.print(table)
    console.print(
        f"transactions: {rows:,} (landed {n_landed:,}); fraud reports in silver: {len(reports):,}"
    )
    console.print(f"features, SQL vs pandas: {comparison.summary()}")
    if not comparison.equal:
        console.print(comparison.examples.T.to_string())
    speedup = pandas_seconds / features_seconds
    verdict = "meets" if speedup >= TARGET_SPEEDUP else "misses"
    console.print(
        f"transaction_features is {speedup:.1f}x faster than pandas "
        f"({features_seconds:.2f} s vs {pandas_seconds:.2f} s; {verdict} the {TARGET_SPEEDUP:.0f}x target)"
    )
    console.print(
        f"the model's compiled SQL in process (best of {args.repeat}, into a scratch table): "
        f"{engine_wall:.2f} s wall, {engine_cpu:.2f} s CPU on {os.cpu_count()} threads; "
        f"pandas {min(pandas_cpu):.2f} s CPU: {min(pandas_cpu) / engine_cpu:.1f}x less CPU, "
        f"{pandas_seconds / engine_wall:.1f}x faster (wall)"
    )
    steps = Table(
        title="incremental one-day step (the last day landed on a medallion built through the day before)",
        title_justify="left",
    )
    steps.add_column("model")
    steps.add_column("full build s", justify="right")
    steps.add_column("one-day step s", justify="right")
    steps.add_column("share", justify="right")
    for name, seconds in model_times.items():
        step_seconds = incremental.model_times.get(name, float("nan"))
        steps.add_row(
            name, f"{seconds:.2f}", f"{step_seconds:.2f}", f"{step_seconds / seconds:.1%}"
        )
    full_total, step_total = sum(model_times.values()), sum(incremental.model_times.values())
    share = step_total / full_total
    steps.add_row("all models", f"{full_total:.2f}", f"{step_total:.2f}", f"{share:.1%}")
    steps.add_row(
        "dbt run --selector medallion (wall, incl. dbt start-up)",
        f"{dbt_seconds:.2f}",
        f"{incremental.dbt_seconds:.2f}",
        f"{incremental.dbt_seconds / dbt_seconds:.1%}",
    )
    console.print(steps)
    verdict = "meets" if share <= TARGET_INCREMENTAL_SHARE else "misses"
    feature_share = incremental.model_times["transaction_features"] / features_seconds
    console.print(
        f"one-day step: the medallion's models take {step_total:.2f} s vs {full_total:.2f} s for the "
        f"full build = {share:.1%} ({verdict} the {TARGET_INCREMENTAL_SHARE:.0%} target); "
        f"transaction_features alone {incremental.model_times['transaction_features']:.2f} s vs "
        f"{features_seconds:.2f} s = {feature_share:.1%}; dbt's fixed cost (parse, connect, "
        f"hooks) comes on top of both; incremental table vs full build: "
        f"{incremental.comparison.summary()}"
    )
    console.print(
        f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} "
        f"on {os.cpu_count()} CPUs — timings are only comparable on a quiet machine"
    )
    return comparison.equal and incremental.comparison.equal


@dataclass
class IncrementalStep:
    model_times: dict[str, float]
    dbt_seconds: float
    first_dbt_seconds: float
    comparison: pandas_features.Comparison


def _incremental_step(
    world: SimulatedWorld, workdir: Path, full_features: pd.DataFrame
) -> IncrementalStep:
    """Build every day but the last in a fresh warehouse, land the last day, build again
    (incrementally) and time transaction_features; compare the table with the full build's."""
    env = _dbt_env(workdir)
    last_day = world.end

    def build() -> tuple[DbtResult, float]:
        started = time.perf_counter()
        result = _dbt(["run", *MEDALLION], workdir, env)
        return result, time.perf_counter() - started

    write_landing(world, workdir / "landing", to_day=last_day - dt.timedelta(days=1))
    _dbt(["seed"], workdir, env)
    _, first_seconds = build()
    write_landing(world, workdir / "landing", from_day=last_day, to_day=last_day)
    step, step_seconds = build()
    if "history_start" not in step.nodes["model.fraudops.transaction_features"]["compiled_code"]:
        raise RuntimeError("the one-day step did not run transaction_features incrementally")
    os.environ.update(env)
    settings = load_settings(dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)})
    with Runtime.build(settings).warehouse(read_only=True) as warehouse:
        incremental = warehouse.read(FEATURE_TABLE)
    columns = [c for c in full_features.columns if c != "transaction_id"]
    return IncrementalStep(
        model_times={
            unique_id.split(".")[-1]: float(node["execution_time"])
            for unique_id, node in step.nodes.items()
        },
        dbt_seconds=step_seconds,
        first_dbt_seconds=first_seconds,
        comparison=pandas_features.compare(incremental, full_features, columns),
    )


def main() -> None:
    defaults = SimulationSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--terminals", type=int, default=defaults.terminals)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workdir", type=Path, help="keep the landing files and warehouse here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time transaction_features and pandas this many times and keep the best",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    # the pandas reference follows the dbt project's windows and delay
    windows = pandas_features.project_windows(REPO_ROOT)
    args.customer_windows, args.terminal_windows, args.delay_days = windows

    console = Console()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        ok = run(args, args.workdir.resolve(), console)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_foundation_") as scratch:
            ok = run(args, Path(scratch), console)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
