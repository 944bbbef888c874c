"""Benchmark `ml score` on the default simulated dataset (~1.75M transactions); budget 10 s.

Builds the data in a scratch folder unless given (as bench/bench_model.py: ``ml simulate`` at its
default size, then ``dbt build --select +transaction_features``), trains the default candidates
(``ml train``), validates the challenger and promotes it (forced if it fails the rules: this
benchmark is about speed), then measures, each run scoring every transaction into a fresh table:

1. end to end: ``ml score`` in a fresh Python process — imports, registry, signature check,
   reading the features, ``predict_proba``, writing — with Python's bytecode cache warm (as after
   ``pip install``; the first, cold run is printed too);
2. in process: the phases of :func:`ml.score.score` and rows/s;
3. model loading: ``mlflow.sklearn.load_model`` + ``predict_proba`` vs ``mlflow.pyfunc.load_model``
   + ``predict`` on the same frame (why ml.score uses the sklearn flavor).

    .venv/bin/python bench/bench_score.py                                 # build everything
    .venv/bin/python bench/bench_score.py --warehouse /tmp/x/warehouse.duckdb  # reuse a build
    .venv/bin/python bench/bench_score.py --workdir /tmp/x --repeat 5     # keep the scratch folder
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_model import build
from rich.console import Console
from rich.table import Table

from ml import registry
from ml.data import feature_matrix
from ml.errors import ValidationFailed
from ml.score import ID_COLUMN, score
from ml.settings import load_settings
from ml.train import train
from ml.warehouse import open_warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 10.0


def _environment(workdir: Path, warehouse: Path) -> dict[str, str]:
    return {
        "FRAUDOPS_DUCKDB_PATH": str(warehouse),
        "FRAUDOPS_SETTINGS_FILE": str(workdir / "none.yaml"),
        "FRAUDOPS__DBT__PROJECT_DIR": str(REPO_ROOT),
        "FRAUDOPS__DBT__PROFILES_DIR": str(REPO_ROOT),
        "FRAUDOPS__MLFLOW__TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        "FRAUDOPS__MLFLOW__ARTIFACT_LOCATION": str(workdir / "mlartifacts"),
        "FRAUDOPS__MLFLOW__EXPERIMENT": "bench_score",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def prepare_champion(console: Console) -> str:
    """Train, validate and promote; return a description of the champion."""
    settings = load_settings()
    started = time.perf_counter()
    trained = train(settings)
    console.print(
        f"trained {trained.best_candidate} as v{trained.model_version} in {time.perf_counter() - started:.0f} s",
        highlight=False,
    )
    report = registry.validate(settings)
    if report.passed:
        registry.promote(settings)
    else:
        console.print(f"[yellow]{ValidationFailed(report.summary())}[/]; promoting anyway (speed benchmark)")
        registry.promote(settings, force=True, reason="bench_score.py: speed benchmark")
    return f"{settings.model.name} v{trained.model_version} ({trained.best_candidate})"


def run_cli(table: str, env: dict[str, str]) -> float:
    """Seconds of `ml score` in a fresh process writing to ``table``."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from ml.cli import app; app()", "score"],
        check=True,
        cwd=REPO_ROOT,
        env={**env, "FRAUDOPS__SCORING__PREDICTIONS_TABLE": table},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def compare_flavors(console: Console) -> Table:
    """Load + predict time of the champion through the sklearn flavor and through pyfunc."""
    import mlflow.pyfunc
    import mlflow.sklearn

    settings = load_settings()
    client = registry.open_registry(settings)
    champion = registry.require_champion(client, settings.model.name)
    uri = registry.model_uri(settings.model.name, str(champion.version))
    features = list(registry.load_model(settings.model.name, str(champion.version)).columns)
    with open_warehouse(settings, read_only=True) as wh:
        frame = wh.read(settings.model.feature_table, [ID_COLUMN, *features])
    x = feature_matrix(frame, features)
    out = Table(title=f"loading and predicting {len(x):,} rows", title_justify="left")
    for column in ("flavor", "load s", "predict s"):
        out.add_column(column, justify="right" if column != "flavor" else "left")
    for flavor, load, predict in (
        ("mlflow.sklearn + predict_proba", mlflow.sklearn.load_model, lambda m: m.predict_proba(x)[:, 1]),
        ("mlflow.pyfunc + predict", mlflow.pyfunc.load_model, lambda m: m.predict(x)),
    ):
        started = time.perf_counter()
        model = load(uri)
        loaded = time.perf_counter()
        predict(model)
        out.add_row(flavor, f"{loaded - started:.2f}", f"{time.perf_counter() - loaded:.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, help="DuckDB file that already holds gold.transaction_features")
    parser.add_argument("--landing-root", type=Path, help="landing files to build from (skips ml simulate)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs (best and all are printed)")
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory(prefix="bench_score_") as scratch:
        workdir = (args.workdir or Path(scratch)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        warehouse = args.warehouse.resolve() if args.warehouse else None
        if warehouse is None:
            warehouse, timings = build(workdir, args.landing_root, console)
            console.print("built: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), highlight=False)
        env = _environment(workdir, warehouse)
        os.environ.update(env)
        champion = prepare_champion(console)

        # 1. end to end, fresh processes; bytecode cached in the scratch folder (never in .venv)
        cli_env = {**os.environ, "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}
        cli_env.pop("PYTHONDONTWRITEBYTECODE", None)
        cold = run_cli("scoring.predictions_bench_cold", cli_env)
        runs = [run_cli(f"scoring.predictions_bench_{i}", cli_env) for i in range(args.repeat)]

        # 2. in process, phase by phase
        settings = load_settings(scoring={"predictions_table": "scoring.predictions_bench_inproc"})
        result = score(settings)
        rerun = score(settings)

        flavors = compare_flavors(console)

    best = min(runs)
    summary = Table(title=f"ml score — {champion}, {result.rows_read:,} transactions", title_justify="left")
    summary.add_column("measure", style="bold")
    summary.add_column("value", justify="right")
    verdict = "[green]within[/]" if best <= BUDGET_SECONDS else "[red]over[/]"
    summary.add_row("end to end, fresh process (best)", f"{best:.2f} s ({verdict} {BUDGET_SECONDS:g} s budget)")
    summary.add_row("end to end, all runs", ", ".join(f"{r:.2f}" for r in runs) + " s")
    summary.add_row("end to end, first run (cold bytecode cache)", f"{cold:.2f} s")
    summary.add_row("rows/s end to end (best)", f"{result.rows_read / best:,.0f}")
    for phase in ("registry", "read", "predict", "write", "total"):
        summary.add_row(f"in process: {phase}", f"{result.seconds[phase]:.2f} s")
    summary.add_row("rows/s in process", f"{result.rows_per_second:,.0f}")
    summary.add_row("rerun (nothing left to score)", f"{rerun.seconds['total']:.2f} s, {rerun.rows_added} rows added")
    console.print(summary)
    console.print(flavors)


if __name__ == "__main__":
    main()
