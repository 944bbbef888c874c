"""Benchmark real-time scoring: ``ml serve`` against MLflow's own scoring server, open loop.

Set-up (in a scratch folder, or ``--workdir`` to reuse one): a simulated world of ``--days``
days (``--customers``/``--terminals``), the first ``days - live_days`` landed and built by dbt;
a HistGradientBoosting champion fit on gold (the kind ``ml train`` picks on the default
world); the remaining days' transactions are the live traffic.

Servers, each one process on loopback:

* ``ml serve``: a request is one raw transaction (landing contract); the server computes its
  21 features from the online state and scores them;
* ``mlflow models serve -m models:/<name>@champion --env-manager local -w 1``: a request is the
  same transaction's precomputed feature row (``dataframe_split``), so MLflow does less work.

The servers' own CPU time per request (from /proc) is printed too: on a shared machine wall
times stretch with the load, CPU times much less.

Load: open loop at a fixed arrival rate (``--rates``, ``--seconds`` each): request i is due at
t0 + i / rate and sent then, whatever the server is doing; its latency runs from that scheduled
time to the answer, so a server that stalls cannot hide its queue (no coordinated omission).
asyncio in this process (aiohttp, or httpx with ``--client httpx``), which shares the machine's
cores with the server. Then
batches of 1,000 transactions per request (closed loop, one at a time): transactions/s.

    .venv/bin/python bench/bench_serve.py                       # everything, ~10 min
    .venv/bin/python bench/bench_serve.py --workdir /tmp/bs     # keep (and reuse) the set-up
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from bench_model import ml_environment  # bench/ is the script's folder, hence on sys.path
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
SLO_P99_MS = 50.0
console = Console()


def environment(workdir: Path) -> dict[str, str]:
    return {
        **ml_environment(workdir, workdir / "warehouse.duckdb", "bench_serve"),
        "FRAUDOPS_LANDING_ROOT": str(workdir / "landing"),
        "FRAUDOPS__LANDING__ROOT": str(workdir / "landing"),
        # a fresh inference log per run (a restart would restore the previous run's)
        "FRAUDOPS__SERVING__LOG_DIR": str(workdir / f"serving-{time.strftime('%Y%m%dT%H%M%S')}"),
        # mlflow models serve reads the tracking URI of MLflow's own variable
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        # mlflow models serve runs `uvicorn` from the PATH
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "DBT_TARGET_PATH": str(workdir / "target"),
        "DBT_LOG_PATH": str(workdir / "logs"),
    }


def set_up(args: argparse.Namespace, workdir: Path) -> pd.DataFrame:
    """Build (or reuse) the world, the warehouse and the champion; the live transactions."""
    from ml.platform.runtime import Runtime
    from ml.platform.settings import SimulationSettings, load_settings
    from ml.world.landing import write_landing
    from ml.world.simulator import simulate

    live_file = workdir / "live.parquet"
    if live_file.exists():
        console.print(f"reusing {workdir}")
        return pd.read_parquet(live_file)
    started = time.perf_counter()
    world = simulate(
        SimulationSettings(customers=args.customers, terminals=args.terminals, days=args.days)
    )
    first_live = world.end - dt.timedelta(days=args.live_days - 1)
    write_landing(world, workdir / "landing", to_day=first_live - dt.timedelta(days=1))
    rt = Runtime.build(load_settings())
    rt.dbt(["run", "--select", "+transaction_features"])
    with rt.warehouse(read_only=True) as warehouse:
        gold = warehouse.read("gold.transaction_features")
    register_champion(rt, gold)
    tx = world.transactions
    live = tx.loc[
        pd.to_datetime(tx["tx_datetime"]) >= pd.Timestamp(first_live),
        ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"],
    ]
    live = live.sort_values(["tx_datetime", "transaction_id"]).reset_index(drop=True)
    live.to_parquet(live_file)
    console.print(
        f"set up in {time.perf_counter() - started:.0f} s: {len(gold):,} gold rows, "
        f"{len(live):,} live transactions"
    )
    return live


def register_champion(rt, gold: pd.DataFrame) -> None:
    """Fit gradient boosting on ``gold`` and register it as the champion, as ml train registers."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml.lifecycle.data import feature_matrix
    from ml.lifecycle.model_log import register_fitted
    from ml.lifecycle.registry import CHAMPION

    x = feature_matrix(gold, rt.settings.model.features)
    model = HistGradientBoostingClassifier(random_state=0).fit(x, gold["tx_fraud"].to_numpy())
    register_fitted(rt, model, x, CHAMPION, run_name="bench_serve")


def feature_rows(live: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The live transactions' features as the online state computes them (MLflow's input)."""
    from ml.lifecycle.loaded_model import load_model
    from ml.lifecycle.registry import CHAMPION, version_by_alias
    from ml.platform.runtime import Runtime
    from ml.platform.settings import load_settings
    from ml.serving.bootstrap import bootstrap_from_warehouse
    from ml.serving.rows import TransactionRows
    from ml.serving.windows import FeatureWindows

    rt = Runtime.build(load_settings())
    version = version_by_alias(rt.registry(), rt.model_name, CHAMPION).version
    columns = load_model(rt.model_name, str(version)).columns
    windows = FeatureWindows.from_settings(rt.settings)
    rss = rss_mb()
    with rt.warehouse(read_only=True) as warehouse:
        state = bootstrap_from_warehouse(warehouse, windows)
    console.print(f"online state: {state.size()}, ~{rss_mb() - rss:.0f} MB RSS in this process")
    batch = state.features(TransactionRows.from_frame(live))
    index = [windows.columns().index(c) for c in columns]
    return columns, batch.values[:, index]


def rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], url: str, ready: str) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}")
        try:
            if httpx.get(url + ready, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise TimeoutError(f"{' '.join(command)} not ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants alive now (/proc; threads
    included): ``mlflow models serve`` runs its uvicorn as a child process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return own + sum(cpu_seconds(int(kid)) for kid in kids)


@dataclass
class Run:
    server: str
    rate: int
    sent: int
    errors: int
    latencies_ms: np.ndarray
    server_cpu_ms: float = float("nan")  # the server's CPU time per request

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else np.nan

    @property
    def meets_slo(self) -> bool:
        return self.errors == 0 and self.percentile(99) < SLO_P99_MS


async def open_loop(
    url: str, bodies: list[bytes], rate: int, seconds: float, client_kind: str = "aiohttp"
) -> tuple[int, int, np.ndarray]:
    """Send ``rate`` requests/s for ``seconds``, each at its scheduled time; latencies from the
    scheduled time. ``client_kind``: aiohttp (default: less CPU per request than httpx, so the
    generator, on the same 2 cores, lags its schedule less) or httpx."""
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors = 0
    headers = {"content-type": "application/json"}
    if client_kind == "aiohttp":
        import aiohttp

        client = aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=1000),
            timeout=aiohttp.ClientTimeout(total=30),
        )

        async def post(body: bytes) -> int:
            async with client.post("/invocations", data=body, headers=headers) as response:
                await response.read()
                return response.status

    else:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        client = httpx.AsyncClient(base_url=url, limits=limits, timeout=30)

        async def post(body: bytes) -> int:
            return (await client.post("/invocations", content=body, headers=headers)).status_code

    async with client:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            try:
                if await post(bodies[i % len(bodies)]) != 200:
                    errors += 1
            except Exception:  # timeouts, refused or reset connections: errors of the run
                errors += 1
            latencies[i] = (time.perf_counter() - due) * 1000

        loop_start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            due = loop_start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    return n, errors, latencies[~np.isnan(latencies)]


def batches(url: str, bodies: list[bytes], rows: int) -> float:
    """Transactions per second, batches sent one after the other."""
    with httpx.Client(base_url=url, timeout=120) as client:
        client.post("/invocations", content=bodies[0], headers={"content-type": "application/json"})
        started = time.perf_counter()
        for body in bodies[1:]:
            response = client.post(
                "/invocations", content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()
        return rows * (len(bodies) - 1) / (time.perf_counter() - started)


def raw_body(frame: pd.DataFrame) -> bytes:
    records = frame.assign(tx_datetime=frame["tx_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    return json.dumps({"dataframe_records": records.to_dict(orient="records")}).encode()


def feature_body(columns: list[str], values: np.ndarray) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": values.tolist()}}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--terminals", type=int, default=10000)
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--live-days", type=int, default=7)
    parser.add_argument("--rates", default="100,200,300,500,750,1000,1500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-serve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = environment(workdir)
    os.environ.update(env)
    live = set_up(args, workdir)
    columns, features = feature_rows(live)
    rates = [int(r) for r in args.rates.split(",")]
    needed = int(max(rates) * args.seconds) * 2 + args.batches * 1000 * 2
    if needed > len(live):
        console.print(f"[yellow]{len(live):,} live transactions for {needed:,} sends: ids repeat")

    servers = {}
    port = free_port()
    servers["ml serve"] = (
        [str(Path(sys.executable).with_name("ml")), "serve", "--port", str(port)],
        f"http://127.0.0.1:{port}",
        "/health",
    )
    port = free_port()
    servers["mlflow models serve"] = (
        [
            str(Path(sys.executable).with_name("mlflow")),
            "models",
            "serve",
            "-m",
            "models:/fraud_detector@champion",
            "--env-manager",
            "local",
            "-w",
            "1",
            "-p",
            str(port),
        ],
        f"http://127.0.0.1:{port}",
        "/ping",
    )
    runs: list[Run] = []
    throughput: dict[str, float] = {}
    batch_cpu: dict[str, float] = {}  # server CPU µs per transaction in batches
    offset = 0
    for name, (command, url, ready) in servers.items():
        process = start(command, env, url, ready)
        try:
            if name == "ml serve":
                console.print(f"ml serve RSS after start-up: {rss_mb(process.pid):.0f} MB")
                version = httpx.get(url + "/version").json()
                console.print(f"/version: {version}", highlight=False)
            for rate in rates:
                n = int(rate * args.seconds)
                part = slice(offset, offset + n)
                if name == "ml serve":
                    bodies = [
                        raw_body(live.iloc[[k]])
                        for k in range(part.start, min(part.stop, len(live)))
                    ]
                else:
                    bodies = [
                        feature_body(columns, features[[k]])
                        for k in range(part.start, min(part.stop, len(live)))
                    ]
                cpu = cpu_seconds(process.pid)
                sent, errors, latencies = asyncio.run(
                    open_loop(url, bodies, rate, args.seconds, args.client)
                )
                run = Run(name, rate, sent, errors, latencies)
                run.server_cpu_ms = (cpu_seconds(process.pid) - cpu) * 1000 / max(1, sent)
                runs.append(run)
                console.print(
                    f"{name} @ {rate}/s: server CPU {run.server_cpu_ms:.2f} ms/request, "
                    f"p50 {run.percentile(50):.1f} p99 {run.percentile(99):.1f} "
                    f"max {run.latencies_ms.max():.1f} ms, errors {errors}, load {os.getloadavg()[0]:.2f}",
                    highlight=False,
                )
                if name == "ml serve":
                    offset += n
                if run.percentile(99) > 20 * SLO_P99_MS:
                    break  # far past saturation: the next rates only queue more
            start_batch = offset
            if name == "ml serve":
                bodies = [
                    raw_body(live.iloc[start_batch + 1000 * b : start_batch + 1000 * (b + 1)])
                    for b in range(args.batches)
                ]
            else:
                bodies = [
                    feature_body(columns, features[1000 * b : 1000 * (b + 1)])
                    for b in range(args.batches)
                ]
            cpu = cpu_seconds(process.pid)
            throughput[name] = batches(url, bodies, 1000)
            batch_cpu[name] = (cpu_seconds(process.pid) - cpu) / (1000 * args.batches) * 1e6
            if name == "ml serve":
                console.print(f"ml serve RSS after the runs: {rss_mb(process.pid):.0f} MB")
        finally:
            process.terminate()
            process.wait(timeout=60)
    report(runs, throughput, batch_cpu)


def report(runs: list[Run], throughput: dict[str, float], batch_cpu: dict[str, float]) -> None:
    table = Table(title="open loop, one transaction per request", title_justify="left")
    columns = (
        "server",
        "rate/s",
        "sent",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "CPU ms/req",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "server" else "right")
    for run in runs:
        table.add_row(
            run.server,
            str(run.rate),
            str(run.sent),
            str(run.errors),
            f"{run.percentile(50):.1f}",
            f"{run.percentile(95):.1f}",
            f"{run.percentile(99):.1f}",
            f"{run.latencies_ms.max():.1f}",
            f"{run.server_cpu_ms:.2f}",
        )
    console.print(table)
    for server in dict.fromkeys(r.server for r in runs):
        ok = [r.rate for r in runs if r.server == server and r.meets_slo]
        console.print(
            f"{server}: highest rate with p99 < {SLO_P99_MS:.0f} ms and no error: "
            f"{max(ok) if ok else 'none'} req/s; batches of 1,000: {throughput.get(server, 0):,.0f} tx/s "
            f"({batch_cpu.get(server, float('nan')):.0f} µs of server CPU per transaction)",
            highlight=False,
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    console.print(
        f"load average {os.getloadavg()}, {os.cpu_count()} cores; load generator CPU "
        f"{usage.ru_utime + usage.ru_stime:.0f} s",
        highlight=False,
    )


if __name__ == "__main__":
    main()
