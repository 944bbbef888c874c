"""Benchmark the medallion build on local Spark beside DuckDB, on the same simulated data.

In one run, in a scratch folder:

1. simulate a world and write its landing files (``ml.world.landing.simulate_landing``);
2. ``dbt build --selector medallion_sql`` (seed, bronze, silver, gold features and data quality,
   with every data and unit test) on the ``local`` target (dbt-duckdb) and on the ``spark``
   target (dbt-spark ``session``, local PySpark, parquet), each into its own warehouse;
3. check that both gold feature tables hold the same rows.

Prints, per target, the wall-clock time of the dbt process (including the JVM start for Spark),
dbt's own elapsed time, and the time spent in models / data tests / unit tests; then the
Spark / DuckDB ratio, and each dbt process's CPU seconds and peak resident memory of its process
tree (the JVM included), measured as bench_scale.py measures its steps. Sizes: ``small``
(CI-sized), ``medium`` (default, ~1/10 of the default world), ``full`` (the settings' default
world, ~1.78M transactions), ``10x`` (10x its cards and terminals over the same 183 days, ~17.7M
transactions, with ``compromise_scaling: population`` as bench_scale.py's 10x world).
``--targets spark`` builds on Spark only (bench_scale.py measures DuckDB at 10x).

    .venv/bin/python bench/bench_spark.py                      # medium
    .venv/bin/python bench/bench_spark.py --size full --spark-threads 2
    .venv/bin/python bench/bench_spark.py --workdir /tmp/bench-spark   # keep the files
    .venv/bin/python bench/bench_spark.py --size 10x --targets spark --workdir /tmp/spark10x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
from bench_scale import DBT, Measured, measure, seconds_by_kind
from common import add_workdir_argument, workdir_of
from rich.console import Console
from rich.table import Table

from ml.platform.settings import SimulationSettings
from ml.world.landing import simulate_landing

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "small": {"customers": 100, "terminals": 200, "days": 42},
    "medium": {"customers": 500, "terminals": 1000, "days": 183},
    "full": {},  # the settings' defaults: 5,000 customers x 10,000 terminals x 183 days
    "10x": {"customers": 50_000, "terminals": 100_000, "compromise_scaling": "population"},
}
SELECTOR = "medallion_sql"
FEATURES = "gold.transaction_features"


def _build(target: str, workdir: Path, landing: Path, threads: int | None) -> Built:
    env = {**os.environ, "FRAUDOPS_LANDING_ROOT": str(landing)}
    # an inference log of its own (none written: the serving models build over no rows)
    env["FRAUDOPS_SERVING_LOG_DIR"] = str(workdir / "serving")
    if target == "local":
        env["FRAUDOPS_DUCKDB_PATH"] = str(workdir / "local" / "warehouse.duckdb")
        (workdir / "local").mkdir(parents=True, exist_ok=True)
    else:
        env.update({"FRAUDOPS_SPARK_DIR": str(workdir / "spark"), "SPARK_LOCAL_IP": "127.0.0.1"})
    target_path = workdir / f"target_{target}"
    cmd = [*DBT, "build", "--selector", SELECTOR, "--target", target]
    cmd += ["--project-dir", str(REPO_ROOT), "--profiles-dir", str(REPO_ROOT)]
    cmd += ["--target-path", str(target_path), "--log-path", str(workdir / f"logs_{target}")]
    if threads:
        cmd += ["--threads", str(threads)]
    measured = measure(cmd, env, workdir / f"dbt_{target}.log", sample=0.5)
    run_results = json.loads((target_path / "run_results.json").read_text())
    return Built(measured, run_results)


@dataclass
class Built:
    """One target's build: the measured dbt process and its run_results.json."""

    measured: Measured
    run_results: dict


def _feature_rows(workdir: Path, target: str) -> int:
    if target == "local":
        with duckdb.connect(str(workdir / "local" / "warehouse.duckdb"), read_only=True) as con:
            return int(con.sql(f"select count(*) from {FEATURES}").fetchall()[0][0])
    folder = workdir / "spark" / "warehouse" / "gold.db" / "transaction_features"
    return int(
        duckdb.sql(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchall()[0][0]
    )


def run(args: argparse.Namespace, workdir: Path, console: Console) -> bool:
    settings = SimulationSettings(**SIZES[args.size], seed=args.seed)
    landing = workdir / "landing"
    console.print(
        f"simulating {settings.customers:,} customers x {settings.terminals:,} terminals x {settings.days} days ...",
        highlight=False,
    )
    written = simulate_landing(settings, landing)
    console.print(
        f"{written.transactions:,} transactions, {written.fraud_reports:,} fraud reports landed",
        highlight=False,
    )

    builds = {}
    for target in args.targets:
        threads = args.local_threads if target == "local" else args.spark_threads
        console.print(f"dbt build --selector {SELECTOR} --target {target} ...", highlight=False)
        builds[target] = _build(target, workdir, landing, threads)

    table = Table(
        title=f"medallion build ({SELECTOR}), {written.transactions:,} transactions",
        title_justify="left",
    )
    table.add_column("dbt process", style="bold")
    for target in builds:
        table.add_column(target, justify="right")
    both = len(builds) == 2
    if both:
        table.add_column("spark / local", justify="right")
    rows = {
        "wall clock s": {t: b.measured.wall for t, b in builds.items()},
        "CPU s (process tree, sampled)": {t: b.measured.tree_cpu for t, b in builds.items()},
        "peak MB (process tree)": {t: b.measured.tree_peak_mb for t, b in builds.items()},
        "dbt elapsed s": {t: float(b.run_results["elapsed_time"]) for t, b in builds.items()},
    }
    kinds = {t: seconds_by_kind(b.run_results) for t, b in builds.items()}
    for kind in ("seed", "model", "test", "unit_test"):
        rows[f"  {kind}s s (sum of node times)"] = {t: kinds[t].get(kind, 0.0) for t in builds}
    for label, values in rows.items():
        cells = [f"{values[t]:,.1f}" for t in builds]
        if both:
            cells.append(f"{values['spark'] / values['local']:.1f}x" if values["local"] else "")
        table.add_row(label, *cells)
    console.print(table)

    counts = {target: _feature_rows(workdir, target) for target in builds}
    same = len(set(counts.values())) == 1
    console.print(
        f"{FEATURES}: "
        + ", ".join(f"{n:,} rows on {t}" for t, n in counts.items())
        + ("" if not both else " [green](same)[/]" if same else " [bold red](DIFFERENT)[/]"),
        highlight=False,
    )
    # every target's feature table holds one row per landed transaction (hence the same rows)
    return all(n == written.transactions for n in counts.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--targets",
        type=lambda text: text.split(","),
        default=["local", "spark"],
        help="comma-separated dbt targets to build (default: local,spark)",
    )
    parser.add_argument(
        "--spark-threads", type=int, default=None, help="dbt threads on spark (default: profile)"
    )
    parser.add_argument(
        "--local-threads", type=int, default=None, help="dbt threads on local (default: profile)"
    )
    add_workdir_argument(parser)
    args = parser.parse_args()
    with workdir_of(args, "bench-spark-") as workdir:
        return 0 if run(args, workdir, Console()) else 1


if __name__ == "__main__":
    sys.exit(main())
