"""Benchmark `ml score` on the default simulated dataset (~1.75M transactions); budget 10 s.

Builds the data in a scratch folder unless given (as bench/bench_model.py: ``ml simulate`` at its
default size, then ``dbt build --select +transaction_features``), trains the default candidates
(``ml train``), validates the challenger and promotes it (forced if it fails the rules: this
benchmark is about speed), then measures, each run scoring every transaction into a fresh table:

1. end to end: ``ml score`` in a fresh Python process — imports, registry, signature check,
   reading the features, ``predict_proba``, writing — with Python's bytecode cache warm (as after
   ``pip install``; the first, cold run is printed too);
2. in process: the phases of :func:`ml.lifecycle.score.score` and rows/s;
3. predicting: ``mlflow.sklearn.load_model`` + ``predict_proba`` vs ``mlflow.pyfunc.load_model``
   + ``predict`` vs ml.lifecycle.score's chunks on threads, on the same frame (wall and CPU seconds).

The machine's load average is printed: on a shared machine wall times stretch, CPU seconds do not.

    .venv/bin/python bench/bench_score.py                                 # build everything
    .venv/bin/python bench/bench_score.py --warehouse /tmp/x/warehouse.duckdb  # reuse a build
    .venv/bin/python bench/bench_score.py --workdir /tmp/x --repeat 5     # keep the scratch folder
    .venv/bin/python bench/bench_score.py --workdir /tmp/x --candidate hist_gradient_boosting \
        --hyperparameters '{"hist_gradient_boosting": {"max_iter": 100}}'  # cost of another model

Each run first deletes the champion's rows of scoring.predictions (and its reasons), so that it
scores every transaction: pass a copy with ``--warehouse``, or let the benchmark build its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_model import add_build_arguments, build, ml_environment
from rich.console import Console
from rich.table import Table

from ml.lifecycle import registry
from ml.lifecycle.data import feature_matrix
from ml.lifecycle.loaded_model import load_model
from ml.lifecycle.promote import promote
from ml.lifecycle.score import ID_COLUMN, score
from ml.lifecycle.train import train
from ml.lifecycle.validate import validate
from ml.platform.errors import ValidationFailed
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.platform.tables import PREDICTION_EXPLANATIONS, PREDICTIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 10.0


def prepare_champion(console: Console, candidates: list[str] | None, retrain: bool) -> str:
    """Train, validate and promote (unless the workdir's registry has a champion already and
    ``retrain`` is false); return a description of the champion."""
    rt = Runtime.build(load_settings())
    settings = rt.settings
    champion = registry.version_by_alias(rt.registry(), settings.model.name, registry.CHAMPION)
    if champion is not None and not retrain:
        console.print(
            f"reusing the champion v{champion.version} of the workdir's registry", highlight=False
        )
        return f"{settings.model.name} v{champion.version} ({champion.tags.get('candidate', '?')})"
    started = time.perf_counter()
    trained = train(rt.with_settings(training={"candidates": candidates}) if candidates else rt)
    console.print(
        f"trained {trained.best_candidate} as v{trained.model_version} in {time.perf_counter() - started:.0f} s",
        highlight=False,
    )
    report = validate(rt)
    if report.passed:
        promote(rt)
    else:
        console.print(
            f"[yellow]{ValidationFailed(report.summary())}[/]; promoting anyway (speed benchmark)"
        )
        promote(rt, force=True, reason="bench_score.py: speed benchmark")
    return f"{settings.model.name} v{trained.model_version} ({trained.best_candidate})"


def forget_scores() -> None:
    """Delete the champion's predictions and reasons, so that the next `ml score` scores every
    transaction again (the benchmark measures a full scoring each time)."""
    rt = Runtime.build(load_settings())
    version = str(registry.require_champion(rt.registry(), rt.model_name).version)
    with rt.warehouse() as wh:
        for table in (PREDICTIONS, PREDICTION_EXPLANATIONS):
            if wh.exists(table):
                wh.con.execute(f"delete from {table} where model_version = ?", [version])


def run_cli(env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `ml score` of every transaction, in a fresh process."""
    forget_scores()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from ml.cli import app; app()", "score"],
        check=True,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


def compare_predictors() -> Table:
    """Load + predict seconds (wall and CPU) of the champion: sklearn flavor, pyfunc, and
    ml.lifecycle.score's way (sklearn flavor, row chunks on threads with one OpenMP thread each)."""
    import mlflow.pyfunc
    import mlflow.sklearn

    rt = Runtime.build(load_settings())
    settings = rt.settings
    champion = registry.require_champion(rt.registry(), settings.model.name)
    name, version = settings.model.name, str(champion.version)
    uri = registry.model_uri(name, version)
    features = load_model(name, version).columns
    with Runtime.build(settings).warehouse(read_only=True) as wh:
        frame = wh.read(settings.model.feature_table, [ID_COLUMN, *features])
    x = feature_matrix(frame, features)
    out = Table(title=f"loading and predicting {len(x):,} rows", title_justify="left")
    for column in ("how", "load s", "predict s (best of 2)", "its CPU s"):
        out.add_column(column, justify="right" if column != "how" else "left")
    for how, load, predict in (
        (
            "mlflow.sklearn + predict_proba",
            mlflow.sklearn.load_model,
            lambda m: m.predict_proba(x)[:, 1],
        ),
        ("mlflow.pyfunc + predict", mlflow.pyfunc.load_model, lambda m: m.predict(x)),
        (
            " ml.lifecycle.score:: sklearn flavor, chunks on threads",
            lambda _uri: load_model(name, version),
            lambda m: m.scores(frame, settings.scoring.n_threads),
        ),
    ):
        started = time.perf_counter()
        model = load(uri)
        loaded = time.perf_counter() - started
        timings = []
        for _ in range(2):  # best of two: the first call also pays one-off warm-up costs
            wall, cpu = time.perf_counter(), time.process_time()
            predict(model)
            timings.append((time.perf_counter() - wall, time.process_time() - cpu))
        wall, cpu = min(timings)
        out.add_row(how, f"{loaded:.2f}", f"{wall:.2f}", f"{cpu:.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_arguments(parser)
    parser.add_argument(
        "--repeat", type=int, default=3, help="end-to-end runs (best and all are printed)"
    )
    parser.add_argument(
        "--candidate", action="append", help="train this candidate (repeatable; default: settings)"
    )
    parser.add_argument(
        "--hyperparameters", type=json.loads, default=None, help="JSON {candidate: {param: value}}"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="train a new champion even if the workdir has one"
    )
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory(prefix="bench_score_") as scratch:
        workdir = (args.workdir or Path(scratch)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        warehouse = args.warehouse.resolve() if args.warehouse else None
        if warehouse is None:
            warehouse, timings = build(workdir, args.landing_root, console)
            console.print(
                "built: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), highlight=False
            )
        env = ml_environment(workdir, warehouse, "bench_score")
        if args.hyperparameters:
            env["FRAUDOPS__TRAINING__HYPERPARAMETERS"] = json.dumps(args.hyperparameters)
        os.environ.update(env)
        retrain = args.retrain or bool(args.candidate or args.hyperparameters)
        champion = prepare_champion(console, args.candidate, retrain)

        # 1. end to end, fresh processes; bytecode cached in the scratch folder (never in .venv)
        cli_env = {**os.environ, "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}
        cli_env.pop("PYTHONDONTWRITEBYTECODE", None)
        cold, _ = run_cli(cli_env)
        runs = [run_cli(cli_env) for _ in range(args.repeat)]
        load = os.getloadavg()[0]

        # 2. in process, phase by phase
        forget_scores()
        rt = Runtime.build(load_settings())
        result = score(rt)
        rerun = score(rt)

        predictors = compare_predictors()

    best, best_cpu = min(runs)
    summary = Table(
        title=f"ml score — {champion}, {result.rows_read:,} transactions", title_justify="left"
    )
    summary.add_column("measure", style="bold")
    summary.add_column("value", justify="right")
    verdict = "[green]within[/]" if best <= BUDGET_SECONDS else "[red]over[/]"
    summary.add_row(
        "end to end, fresh process (best)", f"{best:.2f} s ({verdict} {BUDGET_SECONDS:g} s budget)"
    )
    summary.add_row("end to end, all runs", ", ".join(f"{wall:.2f}" for wall, _ in runs) + " s")
    summary.add_row(
        "CPU seconds of the best run (user + system)", f"{best_cpu:.2f} s on {os.cpu_count()} cores"
    )
    summary.add_row("machine load (1-min average) after the runs", f"{load:.1f}")
    summary.add_row("end to end, first run (cold bytecode cache)", f"{cold:.2f} s")
    summary.add_row("rows/s end to end (best)", f"{result.rows_read / best:,.0f}")
    for phase in [
        p
        for p in ("registry", "read", "predict", "explain", "write", "total")
        if p in result.seconds
    ]:
        summary.add_row(f"in process: {phase}", f"{result.seconds[phase]:.2f} s")
    summary.add_row("rows/s in process", f"{result.rows_per_second:,.0f}")
    summary.add_row(
        "rerun (nothing left to score)",
        f"{rerun.seconds['total']:.2f} s, {rerun.rows_added} rows added",
    )
    console.print(summary)
    console.print(predictors)


if __name__ == "__main__":
    main()
