"""Benchmark the cost of reason codes (ml/explain.py) on top of scoring, per candidate model.

Builds the default simulated dataset in a scratch folder unless given (as bench/bench_model.py),
fits each candidate on the default training window (ml.train.fit_candidate, the settings'
hyperparameters) and measures, on the test window's rows:

1. online, one row at a time (a real-time request): ``predict_proba`` alone, and the added cost
   of ``Explainer.top_reasons`` (p50 / p99 over ``--online-rows`` distinct rows, 1 thread);
   the explainer's construction (once per model version) is timed apart;
2. batch, a day's alerts: ``ml score``'s explanation step for the last test day's alerts
   (``score >= model.alert_threshold``), rows/s and milliseconds per alerted row, best of
   ``--repeat``; the same for the day's top ``alert_top_k`` (100) queue, and once for all the
   alerts of the 7-day test window (what a backfill costs per alert);
3. what ``import shap`` (the tree models' TreeExplainer) costs a process.

    .venv/bin/python bench/bench_explain.py                                      # build everything
    .venv/bin/python bench/bench_explain.py --warehouse /tmp/x/warehouse.duckdb  # reuse a build
    .venv/bin/python bench/bench_explain.py --warehouse ... --candidate random_forest

CPU load matters on a shared machine: the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_model import add_build_arguments, build
from rich.console import Console
from rich.table import Table

from ml.lifecycle import candidates as models
from ml.lifecycle import data
from ml.lifecycle.explain import Explainer, explanations_frame
from ml.lifecycle.train import fit_candidate, load_training_split
from ml.platform.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def online(
    pipeline, explainer: Explainer, x: pd.DataFrame, rows: int
) -> dict[str, tuple[float, float]]:
    """p50/p99 (ms) of one-row predict_proba, explain (contributions) and top_reasons (frame)."""
    timings: dict[str, list[float]] = {"predict": [], "explain": [], "top_reasons": []}
    matrix = x.to_numpy(dtype="float64")
    for i in range(min(rows, len(x))):
        one, row = x.iloc[[i]], matrix[i : i + 1]
        for key, call, argument in (
            ("predict", pipeline.predict_proba, one),
            ("explain", explainer.explain, row),
            ("top_reasons", explainer.top_reasons, row),
        ):
            tick = time.perf_counter()
            call(argument)
            timings[key].append(time.perf_counter() - tick)
    return {key: _percentiles(values) for key, values in timings.items()}


def batch(
    explainer: Explainer, ids: np.ndarray, x: pd.DataFrame, alerted: np.ndarray, repeat: int
) -> float:
    """Best-of seconds of ml score's explanation step for the ``alerted`` rows."""
    best = float("inf")
    for _ in range(repeat):
        tick = time.perf_counter()
        explanations_frame(
            explainer, ids, x, alerted, "fraud_detector", "0", np.datetime64("2026-01-01")
        )
        best = min(best, time.perf_counter() - tick)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_arguments(parser, landing=False)
    parser.add_argument(
        "--candidate", action="append", help="candidate (repeatable; default: all three)"
    )
    parser.add_argument("--online-rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    console = Console(width=200)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-explain-"))
    warehouse = args.warehouse
    if warehouse is None:
        warehouse, _ = build(workdir, None, console)
    os.environ["FRAUDOPS_DUCKDB_PATH"] = str(warehouse)
    os.environ.setdefault("FRAUDOPS_SETTINGS_FILE", str(workdir / "none.yaml"))
    settings = load_settings(dbt={"project_dir": str(REPO_ROOT), "profiles_dir": str(REPO_ROOT)})
    split, _ = load_training_split(settings)
    features = settings.model.features
    test = split.test
    last_day = max(test["tx_date"])
    day = test.loc[test["tx_date"] == last_day].reset_index(drop=True)
    x_day = data.feature_matrix(day, features)
    x_online = data.feature_matrix(
        test.sample(frac=1.0, random_state=0).head(args.online_rows), features
    )
    console.print(
        f"train {len(split.train):,} rows, test {len(test):,}; last test day {last_day}: {len(day):,} "
        f"transactions; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    tick = time.perf_counter()
    import shap  # noqa: F401 - the tree explainer's import, timed once (ml score overlaps it)

    console.print(f"import shap: {(time.perf_counter() - tick) * 1e3:.0f} ms")
    table = Table(title="reason codes: added cost (ms)")
    for column in (
        "candidate",
        "space",
        "explainer init",
        "predict 1 row p50/p99",
        "explain 1 row p50/p99",
        "top_reasons 1 row p50/p99",
        "day's alerts",
        "batch total",
        "per alert",
        "top-100 queue",
        "window's alerts / total",
    ):
        table.add_column(column, justify="right")
    threshold = settings.model.alert_threshold
    for name in args.candidate or list(models.CANDIDATES):
        with models.thread_limit(1):
            pipeline = fit_candidate(name, split.train, settings)
            tick = time.perf_counter()
            explainer = Explainer(pipeline, features)
            init = time.perf_counter() - tick
            one = online(pipeline, explainer, x_online, args.online_rows)
            scores = pipeline.predict_proba(x_day)[:, 1]
            alerted = scores >= threshold
            ids = day["transaction_id"].to_numpy()
            total = batch(explainer, ids, x_day, alerted, args.repeat)
            x_window = data.feature_matrix(test, features)
            window_alerted = pipeline.predict_proba(x_window)[:, 1] >= threshold
            window = batch(
                explainer, test["transaction_id"].to_numpy(), x_window, window_alerted, 1
            )
            top = np.zeros(len(day), dtype=bool)
            top[np.argsort(-scores, kind="stable")[:100]] = True
            queue = batch(explainer, ids, x_day, top, args.repeat)
        n = int(alerted.sum())
        table.add_row(
            name,
            explainer.space,
            f"{init * 1e3:.1f}",
            *(
                f"{one[key][0]:.3f} / {one[key][1]:.3f}"
                for key in ("predict", "explain", "top_reasons")
            ),
            f"{n:,}",
            f"{total * 1e3:.1f}",
            f"{total * 1e3 / max(n, 1):.3f}",
            f"{queue * 1e3:.1f}",
            f"{int(window_alerted.sum()):,} / {window * 1e3:.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
