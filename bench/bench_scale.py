"""Benchmark how cost grows with the work: a world 10x larger, and a history 4x longer.

Two sections, in one run, in a scratch folder (every step a fresh process, as in production):

``scale`` — two worlds over the same days: the default one (5,000 cards x 10,000 terminals x 183
days, ~1.78M transactions) and one with ``--factor`` (10) times the cards and terminals (~17.8M).
Both simulate with ``simulation.compromise_scaling: population``, so the 10x world keeps the
default world's fraud mix. Per world and step:

1. ``ml simulate`` (simulate + write the landing files);
2. ``dbt run --selector medallion`` on a fresh DuckDB file (after an unmeasured ``dbt seed``);
3. ``ml train`` on the default windows (then an unmeasured forced ``ml promote``);
4. ``ml score`` of every transaction.

``daily`` — two worlds of the default size (cards, terminals) over ``--daily-days`` (183 and 730),
set up one after the other, then their one-day steps alternate (so a change of load hits both):
the whole world is simulated into a staging folder, every day but the last ``--daily-steps`` is
copied into the landing zone and built, a champion trained and every transaction scored
(unmeasured set-up); then, for each of the last days, the one-day step: copy the day's files
into the landing zone, ``dbt build --selector medallion`` without seeds and unit tests, its data
tests on the days the latest load can have changed (as the daily operator builds: settings
``replay.data_tests_scope``; each step's run_results.json is kept),
``ml score --start D --end D`` of the new day (as the daily operator scores). Prints the median
step per world and the ratio 730/183.

For each measured step: wall seconds, CPU seconds (user + system of the process and the children
it waited for, from wait4), the peak resident memory of the process tree (the sum of the RSS of
the process and its descendants, sampled from /proc every ``--sample`` s, so a shorter peak can
be missed) and the largest single process's peak (exact, wait4's ru_maxrss). Then the ratios
10x/1x and the targets: time <= 11x, peak memory <= 3x and <= 4 GB at 10x.

DuckDB's memory and threads come from the profile (FRAUDOPS_DUCKDB_MEMORY_LIMIT,
FRAUDOPS_DUCKDB_THREADS, FRAUDOPS_DUCKDB_TEMP_DIR; profiles.yml); the bench leaves them to the
environment it runs in and prints them.

    .venv/bin/python bench/bench_scale.py --quick                  # smoke test, ~2 min
    .venv/bin/python bench/bench_scale.py --workdir /tmp/scale     # both sections, default sizes
    .venv/bin/python bench/bench_scale.py --sections daily --daily-days 183,730
    .venv/bin/python bench/bench_scale.py --sections scale --scale-until simulate
    .venv/bin/python bench/bench_scale.py --customers 500 --terminals 1000 --days 60 --factor 4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from common import add_workdir_argument, workdir_of
from rich.console import Console
from rich.table import Table

from ml.operations.daily import DAILY_EXCLUDED_RESOURCE_TYPES
from ml.platform.sections import ReplaySettings
from ml.world.landing import FRAUD_REPORTS, TRANSACTIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2018, 4, 1)
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
# targets of issue 15
MAX_TIME_RATIO = 11.0
MAX_MEMORY_RATIO = 3.0
MAX_PEAK_MB = 4096
MAX_DAILY_RATIO = 1.2
DUCKDB_ENV = ("FRAUDOPS_DUCKDB_MEMORY_LIMIT", "FRAUDOPS_DUCKDB_THREADS", "FRAUDOPS_DUCKDB_TEMP_DIR")
ML = [sys.executable, "-c", "from ml.cli import app; app()"]
DBT = [sys.executable, "-c", "from dbt.cli.main import cli; cli()"]
# a day's build as the daily operator (ml/operations/daily.py) runs it: no seeds, no unit tests,
# and the data tests on the days the latest load can have changed (settings replay.data_tests_scope)
DAILY_BUILD_FLAGS = (
    "--exclude-resource-type",
    *DAILY_EXCLUDED_RESOURCE_TYPES,
    "--vars",
    json.dumps({"data_tests_scope": ReplaySettings().data_tests_scope}),
)


# --- measuring a process tree ------------------------------------------------------------------
def _process_tree(root: int) -> tuple[int, dict[int, int]]:
    """Bytes resident in ``root`` and its descendants, and each one's CPU clock ticks so far
    (user + system, from /proc; vanished processes count 0)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, ticks, todo = 0, {}, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
                ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total, ticks


@dataclass
class Measured:
    """One step: wall and CPU seconds, peak RSS of the process tree and of its largest process."""

    wall: float
    cpu: float
    tree_peak_mb: float
    # CPU seconds of every process of the tree, sampled: counts the descendants nobody waited
    # for (Spark's JVM), which ``cpu`` (wait4) misses; a process's last interval can be missed
    tree_cpu: float
    process_peak_mb: float
    extra: dict[str, float] = field(default_factory=dict)


def measure(cmd: list[str], env: dict[str, str], log: Path, sample: float) -> Measured:
    """Run ``cmd`` (cwd: the repository), sampling its process tree's memory; raise on failure."""
    peak = 0
    ticks: dict[int, int] = {}
    done = threading.Event()
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

        def sampler() -> None:
            nonlocal peak
            while not done.is_set():
                rss, now = _process_tree(proc.pid)
                peak = max(peak, rss)
                ticks.update(now)
                done.wait(sample)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"{' '.join(cmd[3:])} failed (exit {proc.returncode}), log {log}:\n{tail}")
    return Measured(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        tree_peak_mb=peak / MB,
        tree_cpu=sum(ticks.values()) / os.sysconf("SC_CLK_TCK"),
        process_peak_mb=usage.ru_maxrss / 1024,  # KiB on Linux
    )


def seconds_by_kind(run_results: dict) -> dict[str, float]:
    """Seconds of a dbt command's nodes (its run_results.json) by kind: model, test, seed..."""
    seconds: dict[str, float] = {}
    for node in run_results["results"]:
        kind = node["unique_id"].split(".")[0]
        seconds[kind] = seconds.get(kind, 0.0) + float(node["execution_time"])
    return seconds


# --- one world ---------------------------------------------------------------------------------
@dataclass
class World:
    name: str
    customers: int
    terminals: int
    days: int
    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def target(self) -> Path:
        return self.root / "target"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "FRAUDOPS_DUCKDB_PATH": str(self.warehouse),
            "FRAUDOPS_LANDING_ROOT": str(self.landing),
            "FRAUDOPS_SETTINGS_FILE": str(self.root / "none.yaml"),
            "FRAUDOPS__DBT__PROJECT_DIR": str(REPO_ROOT),
            "FRAUDOPS__DBT__PROFILES_DIR": str(REPO_ROOT),
            "FRAUDOPS__LANDING__ROOT": str(self.landing),
            "FRAUDOPS__SIMULATION__COMPROMISE_SCALING": "population",
            "FRAUDOPS__MLFLOW__TRACKING_URI": f"sqlite:///{self.root}/mlflow.db",
            "FRAUDOPS__MLFLOW__ARTIFACT_LOCATION": str(self.root / "mlartifacts"),
            "FRAUDOPS__MLFLOW__EXPERIMENT": "bench_scale",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_LOG_PATH": str(self.root / "logs"),
        }
        # bytecode cached in the scratch folder (never in .venv), as after an install
        env["PYTHONPYCACHEPREFIX"] = str(self.root.parent / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def simulate_args(self, landing: Path | None = None) -> list[str]:
        return [
            "simulate",
            f"--customers={self.customers}",
            f"--terminals={self.terminals}",
            f"--days={self.days}",
            f"--start={START}",
            f"--landing-root={landing or self.landing}",
        ]

    def dbt(self, *args: str) -> list[str]:
        return [
            *DBT,
            *args,
            "--project-dir",
            str(REPO_ROOT),
            "--profiles-dir",
            str(REPO_ROOT),
            "--target-path",
            str(self.target),
        ]

    def node_seconds(self) -> dict[str, float]:
        """Seconds of the last dbt command's nodes by kind (model, test, unit_test, seed), and
        each model's own."""
        results = json.loads((self.target / "run_results.json").read_text())
        seconds = seconds_by_kind(results)
        for node in results["results"]:
            if node["unique_id"].startswith("model."):
                seconds[f"  {node['unique_id'].split('.')[-1]}"] = float(node["execution_time"])
        return seconds

    def fraud_mix(self) -> tuple[int, float, dict[int, float]]:
        """Transactions, fraud rate and fraud rate by scenario of the gold feature table."""
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            rows, rate = con.sql(
                "select count(*), avg(tx_fraud) from gold.transaction_features"
            ).fetchall()[0]
            by = con.sql(
                "select tx_fraud_scenario, count(*) from gold.transaction_features "
                "where tx_fraud = 1 group by all order by 1"
            ).fetchall()
        return int(rows), float(rate), {int(s): n / rows for s, n in by}


#: the steps of the scale section, in order; each needs the ones before it
SCALE_STEPS = ("simulate", "dbt", "train", "score")


def run_scale_world(
    world: World, sample: float, console: Console, last_step: str = SCALE_STEPS[-1]
) -> dict[str, Measured]:
    world.root.mkdir(parents=True, exist_ok=True)
    env, logs = world.env(), world.root
    steps: dict[str, Measured] = {}
    console.print(
        f"[bold]{world.name}[/]: {world.customers:,} cards x {world.terminals:,} terminals x {world.days} days",
        highlight=False,
    )
    steps["simulate"] = measure([*ML, *world.simulate_args()], env, logs / "simulate.log", sample)
    console.print(f"  simulate {steps['simulate'].wall:.1f} s", highlight=False)
    if last_step == "simulate":
        return steps
    measure(world.dbt("seed"), env, logs / "seed.log", sample)
    steps["dbt medallion"] = measure(
        world.dbt("run", "--selector", "medallion"), env, logs / "dbt.log", sample
    )
    steps["dbt medallion"].extra = world.node_seconds()
    console.print(
        f"  dbt run --selector medallion {steps['dbt medallion'].wall:.1f} s", highlight=False
    )
    if last_step == "dbt":
        return steps
    steps["ml train"] = measure([*ML, "train"], env, logs / "train.log", sample)
    console.print(f"  ml train {steps['ml train'].wall:.1f} s", highlight=False)
    if last_step == "train":
        return steps
    measure(
        [*ML, "promote", "--force", "--reason", "bench_scale"], env, logs / "promote.log", sample
    )
    steps["ml score"] = measure([*ML, "score"], env, logs / "score.log", sample)
    console.print(f"  ml score {steps['ml score'].wall:.1f} s", highlight=False)
    return steps


def scale_section(args: argparse.Namespace, base: Path, console: Console) -> bool:
    small = World("1x", args.customers, args.terminals, args.days, base / "scale-1x")
    large = World(
        f"{args.factor:g}x",
        int(args.customers * args.factor),
        int(args.terminals * args.factor),
        args.days,
        base / f"scale-{args.factor:g}x",
    )
    results = {
        w.name: run_scale_world(w, args.sample, console, args.scale_until) for w in (small, large)
    }
    mixes = (
        {w.name: w.fraud_mix() for w in (small, large)} if args.scale_until != "simulate" else {}
    )

    table = Table(
        title=f"cost of a {args.factor:g}x world (same {args.days} days)", title_justify="left"
    )
    for column in (
        "step",
        "wall s 1x",
        f"wall s {large.name}",
        "ratio",
        "CPU s 1x",
        f"CPU s {large.name}",
        "ratio",
        "tree peak MB 1x",
        f"tree peak MB {large.name}",
        "ratio",
        f"largest process MB {large.name}",
    ):
        table.add_column(column, justify="left" if column == "step" else "right")
    ok = True
    for step in results[small.name]:
        a, b = results[small.name][step], results[large.name][step]
        time_ratio, mem_ratio = b.wall / a.wall, b.tree_peak_mb / a.tree_peak_mb
        time_ok = time_ratio <= MAX_TIME_RATIO
        mem_ok = mem_ratio <= MAX_MEMORY_RATIO and b.tree_peak_mb <= MAX_PEAK_MB
        ok &= time_ok and mem_ok
        table.add_row(
            step,
            f"{a.wall:.1f}",
            f"{b.wall:.1f}",
            _mark(time_ratio, time_ok),
            f"{a.cpu:.1f}",
            f"{b.cpu:.1f}",
            f"{b.cpu / a.cpu:.1f}x",
            f"{a.tree_peak_mb:,.0f}",
            _mark_mb(b.tree_peak_mb, b.tree_peak_mb <= MAX_PEAK_MB),
            _mark(mem_ratio, mem_ratio <= MAX_MEMORY_RATIO),
            f"{b.process_peak_mb:,.0f}",
        )
    console.print(table)
    if "dbt medallion" not in results[small.name]:
        return ok
    models = Table(
        title="dbt medallion: seconds of its nodes (run_results.json)", title_justify="left"
    )
    for column in ("nodes", "1x", large.name, "ratio"):
        models.add_column(column, justify="left" if column == "nodes" else "right")
    for kind in results[small.name]["dbt medallion"].extra:
        a = results[small.name]["dbt medallion"].extra[kind]
        b = results[large.name]["dbt medallion"].extra.get(kind, float("nan"))
        models.add_row(kind, f"{a:.1f}", f"{b:.1f}", f"{b / a:.1f}x" if a >= 0.05 else "-")
    console.print(models)
    for name, (rows, rate, by) in mixes.items():
        scenarios = ", ".join(f"scenario {s} {r:.3%}" for s, r in by.items())
        console.print(
            f"{name}: {rows:,} transactions, fraud rate {rate:.3%} ({scenarios})", highlight=False
        )
    return ok


# --- the one-day step against history length ---------------------------------------------------
def _land(world: World, staging: Path, day: dt.date) -> None:
    """Copy day ``day``'s landing files (transactions made, reports reported that day) from the
    staging folder into the landing zone: what a day's feeds deliver."""
    for feed in (TRANSACTIONS, FRAUD_REPORTS):
        source, dest = feed.file_path(staging, day), feed.file_path(world.landing, day)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)


def setup_daily_world(
    world: World, steps_count: int, sample: float, console: Console
) -> list[dt.date]:
    """Simulate the whole world into a staging folder, land and build every day but the last
    ``steps_count``, train a champion and score everything; return the days left to step."""
    world.root.mkdir(parents=True, exist_ok=True)
    env, logs, staging = world.env(), world.root, world.root / "staging"
    console.print(
        f"[bold]daily, {world.name}[/]: set-up (simulate, land, build, train, score) ...",
        highlight=False,
    )
    measure([*ML, *world.simulate_args(staging)], env, logs / "simulate.log", sample)
    last = START + dt.timedelta(days=world.days - 1)
    first_step = last - dt.timedelta(days=steps_count - 1)
    day = START
    while day < first_step:
        _land(world, staging, day)
        day += dt.timedelta(days=1)
    measure(world.dbt("seed"), env, logs / "seed.log", sample)
    setup = measure(world.dbt("run", "--selector", "medallion"), env, logs / "dbt.log", sample)
    measure([*ML, "train"], env, logs / "train.log", sample)
    measure(
        [*ML, "promote", "--force", "--reason", "bench_scale"], env, logs / "promote.log", sample
    )
    measure([*ML, "score"], env, logs / "score-setup.log", sample)
    console.print(f"  set-up done (full build {setup.wall:.0f} s)", highlight=False)
    return [first_step + dt.timedelta(days=i) for i in range(steps_count)]


def daily_step(world: World, day: dt.date, sample: float, console: Console) -> dict[str, float]:
    """Land ``day``, build the daily selection, score what is new."""
    env, logs = world.env(), world.root
    tick = time.perf_counter()
    _land(world, world.root / "staging", day)
    landed = time.perf_counter() - tick
    build = measure(
        world.dbt("build", "--selector", "medallion", *DAILY_BUILD_FLAGS),
        env,
        logs / f"build-{day}.log",
        sample,
    )
    nodes = world.node_seconds()
    shutil.copyfile(world.target / "run_results.json", logs / f"run_results-{day}.json")
    # as the daily operator scores: the new day only (ml/operations/daily.py: score_rows)
    scored = measure(
        [*ML, "score", f"--start={day}", f"--end={day}"], env, logs / f"score-{day}.log", sample
    )
    step = {
        "land s": landed,
        "dbt build wall s": build.wall,
        "models s": nodes.get("model", 0.0),
        "tests s": nodes.get("test", 0.0) + nodes.get("unit_test", 0.0),
        "ml score wall s": scored.wall,
        "step wall s": landed + build.wall + scored.wall,
        "dbt CPU s": build.cpu,
        "dbt peak MB": build.tree_peak_mb,
        "score peak MB": scored.tree_peak_mb,
    }
    console.print(
        f"  {world.name}, {day}: " + ", ".join(f"{k} {v:.1f}" for k, v in step.items()),
        highlight=False,
    )
    return step


def daily_section(args: argparse.Namespace, base: Path, console: Console) -> bool:
    lengths = [int(d) for d in args.daily_days.split(",")]
    worlds = [
        World(f"{d} days", args.customers, args.terminals, d, base / f"daily-{d}") for d in lengths
    ]
    days = {w.name: setup_daily_world(w, args.daily_steps, args.sample, console) for w in worlds}
    # the worlds' steps alternate, so a change of the machine's load hits both alike
    steps: dict[int, list[dict[str, float]]] = {d: [] for d in lengths}
    for index in range(args.daily_steps):
        for world in worlds:
            steps[world.days].append(
                daily_step(world, days[world.name][index], args.sample, console)
            )
    medians = {
        d: {k: statistics.median(s[k] for s in steps[d]) for k in steps[d][0]} for d in lengths
    }
    short, long = lengths[0], lengths[-1]
    table = Table(
        title=f"one-day step vs history ({args.customers:,} cards x {args.terminals:,} terminals; "
        f"median of the last {args.daily_steps} days)",
        title_justify="left",
    )
    for column in ("measure", *(f"{d} days" for d in lengths), f"{long}/{short}"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    ok = True
    for measure_name in medians[short]:
        ratio = (
            medians[long][measure_name] / medians[short][measure_name]
            if medians[short][measure_name]
            else float("nan")
        )
        targeted = measure_name in ("models s", "step wall s")
        if targeted:
            ok &= ratio <= MAX_DAILY_RATIO
        table.add_row(
            measure_name,
            *(f"{medians[d][measure_name]:.2f}" for d in lengths),
            _mark(ratio, ratio <= MAX_DAILY_RATIO) if targeted else f"{ratio:.2f}x",
        )
    console.print(table)
    return ok


def _mark(ratio: float, ok: bool) -> str:
    return f"[green]{ratio:.2f}x[/]" if ok else f"[red]{ratio:.2f}x[/]"


def _mark_mb(mb: float, ok: bool) -> str:
    return f"[green]{mb:,.0f}[/]" if ok else f"[red]{mb:,.0f}[/]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke-test sizes: 100 x 200 x 42 days, daily 42 and 84 days",
    )
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--terminals", type=int, default=10000)
    parser.add_argument(
        "--days", type=int, default=183, help="days of both worlds of the scale section"
    )
    parser.add_argument(
        "--factor", type=float, default=10.0, help="cards and terminals of the large world"
    )
    parser.add_argument("--sections", default="scale,daily", help="scale, daily or both")
    parser.add_argument(
        "--scale-until",
        choices=SCALE_STEPS,
        default=SCALE_STEPS[-1],
        help="last step of the scale section (each step needs the ones before it)",
    )
    parser.add_argument(
        "--daily-days", default="183,730", help="history lengths of the daily section"
    )
    parser.add_argument(
        "--daily-steps", type=int, default=2, help="one-day steps measured per history (median)"
    )
    parser.add_argument("--sample", type=float, default=0.1, help="seconds between memory samples")
    add_workdir_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.terminals, args.days, args.daily_days = 100, 200, 42, "42,84"
    console = Console(width=200)
    duckdb_env = ", ".join(f"{k}={os.environ.get(k, '(profile default)')}" for k in DUCKDB_ENV)
    console.print(
        f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"(cores: {os.cpu_count()}); {duckdb_env}",
        highlight=False,
    )
    sections = args.sections.split(",")
    ok = True
    with workdir_of(args, "bench-scale-") as base:
        if "scale" in sections:
            ok &= scale_section(args, base, console)
            console.print(
                f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", highlight=False
            )
        if "daily" in sections:
            ok &= daily_section(args, base, console)
    console.print(
        f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", highlight=False
    )
    console.print("[green]all targets met[/]" if ok else "[red]some targets missed[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
