"""Benchmark model quality: the prequential protocol on the default simulated dataset.

Builds the data in a scratch folder unless given (``ml simulate`` at its default size — 5,000
customers × 10,000 terminals × 183 days — then ``dbt build --selector medallion`` (seeds, bronze,
silver, gold features, with their tests) into a scratch DuckDB), then runs ``ml evaluate --protocol prequential`` (4 folds of 7-day train /
7-day delay / 7-day test, ending at the last mature day) and prints mean ± std of ROC AUC,
average precision and Card Precision@100 per candidate, with the time each step took.

Target for the champion family: prequential AP >= 0.70 and CP@100 >= 0.30 (the Fraud Detection
Handbook's best prequential result on its own simulator: XGBoost, AP 0.687, CP@100 0.303).

    .venv/bin/python bench/bench_model.py                       # build everything in a temp dir
    .venv/bin/python bench/bench_model.py --warehouse /tmp/x/wh.duckdb   # reuse a built warehouse
    .venv/bin/python bench/bench_model.py --landing-root /tmp/x/landing  # reuse landing files
    .venv/bin/python bench/bench_model.py --train-days 14 --hyperparameters \
        '{"hist_gradient_boosting": {"learning_rate": 0.05}}'
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ml.lifecycle.evaluate import prequential
from ml.platform.dbt import run_dbt
from ml.platform.runtime import Runtime
from ml.platform.settings import load_settings
from ml.world.landing import simulate_landing

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_AP = 0.70
TARGET_CP = 0.30


def build(
    workdir: Path, landing_root: Path | None, console: Console
) -> tuple[Path, dict[str, float]]:
    """Simulate (unless ``landing_root`` is given) and build the feature table; return the DuckDB path."""
    timings: dict[str, float] = {}
    if landing_root is None:
        landing_root = workdir / "landing"
        started = time.perf_counter()
        result = simulate_landing(load_settings().simulation, landing_root)
        timings["simulate"] = time.perf_counter() - started
        console.print(f"simulated {result.transactions:,} transactions, {result.frauds:,} frauds")
    warehouse = workdir / "warehouse.duckdb"
    started = time.perf_counter()
    run_dbt(
        ["build", "--selector", "medallion"],
        project_dir=REPO_ROOT,
        target_path=workdir / "target",
        env={
            "FRAUDOPS_DUCKDB_PATH": str(warehouse),
            "FRAUDOPS_LANDING_ROOT": str(landing_root),
            "DBT_LOG_PATH": str(workdir / "logs"),
        },
    )
    timings["dbt build"] = time.perf_counter() - started
    return warehouse, timings


def ml_environment(workdir: Path, warehouse: Path, experiment: str) -> dict[str, str]:
    """Environment pointing ``ml`` (this process's settings and the ``ml`` processes a benchmark
    starts) at ``warehouse``, the repository's dbt project, no settings file, and MLflow stores
    under ``workdir`` (experiment ``experiment``)."""
    return {
        "FRAUDOPS_DUCKDB_PATH": str(warehouse),
        "FRAUDOPS_SETTINGS_FILE": str(workdir / "none.yaml"),
        "FRAUDOPS__DBT__PROJECT_DIR": str(REPO_ROOT),
        "FRAUDOPS__DBT__PROFILES_DIR": str(REPO_ROOT),
        "FRAUDOPS__MLFLOW__TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        "FRAUDOPS__MLFLOW__ARTIFACT_LOCATION": str(workdir / "mlartifacts"),
        "FRAUDOPS__MLFLOW__EXPERIMENT": experiment,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def add_build_arguments(parser: argparse.ArgumentParser, landing: bool = True) -> None:
    """The options of a benchmark that needs the default world built (or reuses a build)."""
    parser.add_argument(
        "--warehouse", type=Path, help="DuckDB file that already holds gold.transaction_features"
    )
    if landing:
        parser.add_argument(
            "--landing-root", type=Path, help="landing files to build from (skips ml simulate)"
        )
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder (default: a temporary one, removed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_arguments(parser)
    parser.add_argument(
        "--folds", type=int, default=None, help="prequential folds (default: settings, 4)"
    )
    parser.add_argument("--train-days", type=int, default=None)
    parser.add_argument(
        "--candidate", action="append", help="candidate (repeatable; default: settings)"
    )
    parser.add_argument(
        "--hyperparameters", type=json.loads, default=None, help="JSON {candidate: {param: value}}"
    )
    parser.add_argument(
        "--n-threads", type=int, default=None, help="threads for fit/predict (default: settings, 1)"
    )
    parser.add_argument(
        "--known-compromised",
        choices=["reported", "delay"],
        default=None,
        help="test-set exclusion rule (default: settings, 'reported'); 'delay' is the handbook's code",
    )
    parser.add_argument(
        "--track", action="store_true", help="also log the run to MLflow in the scratch folder"
    )
    args = parser.parse_args()
    console = Console(width=160)

    with tempfile.TemporaryDirectory(prefix="bench_model_") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        warehouse = args.warehouse
        if warehouse is None:
            warehouse, timings = build(workdir, args.landing_root, console)
        os.environ["FRAUDOPS_DUCKDB_PATH"] = str(warehouse.resolve())
        training: dict = {}
        if args.train_days:
            training["train_days"] = args.train_days
        if args.hyperparameters:
            training["hyperparameters"] = args.hyperparameters
        if args.known_compromised:
            training["known_compromised"] = args.known_compromised
        if args.n_threads:
            training["n_threads"] = args.n_threads
        settings = load_settings(
            dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)},
            mlflow={
                "tracking_uri": f"sqlite:///{workdir}/mlflow.db",
                "artifact_location": str(workdir / "mlartifacts"),
                "experiment": "bench_model",
            },
            training=training,
        )
        started = time.perf_counter()
        overrides = {"prequential_folds": args.folds, "candidates": args.candidate}
        rt = Runtime.build(settings).with_settings(
            training={k: v for k, v in overrides.items() if v}
        )
        result = prequential(rt, track=args.track)
        timings["prequential"] = time.perf_counter() - started

    first, last = result.windows[-1], result.windows[0]
    table = Table(
        title=f"prequential, {len(result.windows)} folds, train {settings.training.train_days} d / "
        f"delay {settings.training.delay_days} d / test {settings.training.test_days} d, "
        f"tests {first.test_start}..{last.test_end}, known-compromised rule "
        f"{settings.training.known_compromised!r}",
        title_justify="left",
    )
    table.add_column("candidate", style="bold")
    for metric in result.metric_names:
        table.add_column(metric, justify="right")
    table.add_column(f"AP≥{TARGET_AP} & CP@100≥{TARGET_CP}", justify="center")
    cp_key = result.metric_names[2]
    for candidate in result.summary.index:
        cells = []
        for metric in result.metric_names:
            mean, std = result.mean_std(candidate, metric)
            cells.append(f"{mean:.3f} ± {std:.3f}")
        ap, _ = result.mean_std(candidate, "average_precision")
        cp, _ = result.mean_std(candidate, cp_key)
        table.add_row(
            candidate,
            *cells,
            "[green]met[/]" if ap >= TARGET_AP and cp >= TARGET_CP else "[red]not met[/]",
        )
    console.print(table)
    folds = result.folds[
        [
            "fold",
            "candidate",
            "test_start",
            "test_end",
            "train_frauds",
            "test_rows",
            "frauds",
            *result.metric_names,
        ]
    ]
    console.print(folds.round(3).to_string(index=False))
    console.print(
        "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), highlight=False
    )


if __name__ == "__main__":
    main()
