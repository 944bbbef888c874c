"""Benchmark the medallion build on local Spark beside DuckDB, on the same simulated data.

In one run, in a scratch folder:

1. simulate a world and write its landing files (``ml.world.landing.simulate_landing``);
2. ``dbt build --selector medallion_sql`` (seed, bronze, silver, gold features and data quality,
   with every data and unit test) on the ``local`` target (dbt-duckdb) and on the ``spark``
   target (dbt-spark ``session``, local PySpark, parquet), each into its own warehouse;
3. check that both gold feature tables hold the same rows.

Prints, per target, the wall-clock time of the dbt process (including the JVM start for Spark),
dbt's own elapsed time, and the time spent in models / data tests / unit tests; then the
Spark / DuckDB ratio. Sizes: ``small`` (CI-sized), ``medium`` (default, ~1/10 of the default
world), ``full`` (the settings' default world, ~1.75M transactions).

    .venv/bin/python bench/bench_spark.py                      # medium
    .venv/bin/python bench/bench_spark.py --size full --spark-threads 2
    .venv/bin/python bench/bench_spark.py --workdir /tmp/bench-spark   # keep the files
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from ml.platform.dbt import DbtResult, run_dbt
from ml.platform.settings import SimulationSettings
from ml.world.landing import simulate_landing

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "small": {"customers": 100, "terminals": 200, "days": 42},
    "medium": {"customers": 500, "terminals": 1000, "days": 183},
    "full": {},  # the settings' defaults: 5,000 customers x 10,000 terminals x 183 days
}
SELECTOR = "medallion_sql"
FEATURES = "gold.transaction_features"


def _build(
    target: str, workdir: Path, landing: Path, threads: int | None
) -> tuple[float, DbtResult]:
    env = {"FRAUDOPS_LANDING_ROOT": str(landing)}
    if target == "local":
        env["FRAUDOPS_DUCKDB_PATH"] = str(workdir / "local" / "warehouse.duckdb")
        (workdir / "local").mkdir(parents=True, exist_ok=True)
    else:
        env.update({"FRAUDOPS_SPARK_DIR": str(workdir / "spark"), "SPARK_LOCAL_IP": "127.0.0.1"})
    args = ["build", "--selector", SELECTOR, "--log-path", str(workdir / f"logs_{target}")]
    if threads:
        args += ["--threads", str(threads)]
    started = time.perf_counter()
    result = run_dbt(
        args,
        project_dir=REPO_ROOT,
        target=target,
        target_path=workdir / f"target_{target}",
        env=env,
    )
    return time.perf_counter() - started, result


def _by_kind(result: DbtResult) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for unique_id, node in result.nodes.items():
        seconds[unique_id.split(".")[0]] += float(node["execution_time"])
    return seconds


def _feature_rows(workdir: Path) -> tuple[int, int]:
    with duckdb.connect(str(workdir / "local" / "warehouse.duckdb"), read_only=True) as con:
        local = con.sql(f"select count(*) from {FEATURES}").fetchall()[0][0]
    folder = workdir / "spark" / "warehouse" / "gold.db" / "transaction_features"
    spark = duckdb.sql(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchall()[0][0]
    return int(local), int(spark)


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

    timings = {}
    for target, threads in (("local", args.local_threads), ("spark", args.spark_threads)):
        console.print(f"dbt build --selector {SELECTOR} --target {target} ...", highlight=False)
        timings[target] = _build(target, workdir, landing, threads)

    table = Table(
        title=f"medallion build ({SELECTOR}), {written.transactions:,} transactions",
        title_justify="left",
    )
    table.add_column("seconds", style="bold")
    for target in timings:
        table.add_column(target, justify="right")
    table.add_column("spark / local", justify="right")
    rows = {
        "wall clock (dbt process)": {t: wall for t, (wall, _) in timings.items()},
        "dbt elapsed": {t: float(r.run_results["elapsed_time"]) for t, (_, r) in timings.items()},
    }
    kinds = {t: _by_kind(r) for t, (_, r) in timings.items()}
    for kind in ("seed", "model", "test", "unit_test"):
        rows[f"  {kind}s (sum of node times)"] = {t: kinds[t].get(kind, 0.0) for t in timings}
    for label, values in rows.items():
        ratio = values["spark"] / values["local"] if values["local"] else float("nan")
        table.add_row(label, *(f"{values[t]:.1f}" for t in timings), f"{ratio:.1f}x")
    console.print(table)

    local_rows, spark_rows = _feature_rows(workdir)
    same = local_rows == spark_rows
    console.print(
        f"{FEATURES}: {local_rows:,} rows on local, {spark_rows:,} on spark "
        + ("[green](same)[/]" if same else "[bold red](DIFFERENT)[/]"),
        highlight=False,
    )
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spark-threads", type=int, default=None, help="dbt threads on spark (default: profile)"
    )
    parser.add_argument(
        "--local-threads", type=int, default=None, help="dbt threads on local (default: profile)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the files here (default: a temp dir)"
    )
    args = parser.parse_args()
    console = Console()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return 0 if run(args, args.workdir, console) else 1
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        return 0 if run(args, Path(tmp), console) else 1


if __name__ == "__main__":
    sys.exit(main())
