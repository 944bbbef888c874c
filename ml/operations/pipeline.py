"""``ml run``: the whole loop on one target, step by step, with a summary at the end.

simulate -> dbt build (medallion) -> dbt docs generate -> ml train -> ml validate -> ml promote
-> ml score -> dbt build (downstream: alerts, performance, drift) -> summary.

Each step is the same plain function the individual ``ml`` commands call; dbt runs in a
subprocess (``ml.platform.dbt``) against the same profile and target as ``ml``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.lifecycle import promote, score, train, validate
from ml.lifecycle.model_card_render import write_model_card
from ml.platform.dbt import DbtResult
from ml.platform.errors import ValidationFailed
from ml.platform.runtime import Runtime
from ml.platform.targets import duckdb_path
from ml.world.landing import simulate_landing

#: Where `ml run` writes the model card of the version it promotes (beside the report).
MODEL_CARDS = Path("reports")


@dataclass
class StepResult:
    name: str
    seconds: float
    detail: str
    value: Any = None


@dataclass
class RunResult:
    steps: list[StepResult] = field(default_factory=list)
    train: Any = None
    validation: Any = None
    promotion: Any = None
    model_card: Any = None
    score: Any = None

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


def _summarise_dbt(result: DbtResult) -> str:
    statuses: dict[str, int] = {}
    for node in result.nodes.values():
        statuses[node["status"]] = statuses.get(node["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def run(
    rt: Runtime,
    *,
    simulate: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[StepResult], None] | None = None,
) -> RunResult:
    """Run the loop; ``on_step(name)`` is called as each step starts and ``on_done(step)`` as it
    ends (for progress display)."""
    settings = rt.settings
    result = RunResult()

    def timed(name: str, func: Callable[[], tuple[str, Any]]) -> Any:
        if on_step:
            on_step(name)
        start = time.perf_counter()
        detail, value = func()
        result.steps.append(StepResult(name, time.perf_counter() - start, detail, value))
        if on_done:
            on_done(result.steps[-1])
        return value

    if simulate:

        def _simulate() -> tuple[str, Any]:
            sim = simulate_landing(settings.simulation, settings.landing.root)
            return (
                f"{sim.transactions:,} transactions, {sim.fraud_rate:.2%} fraud, {len(sim.days)} days",
                sim,
            )

        timed("simulate", _simulate)

    def _medallion() -> tuple[str, Any]:
        res = rt.dbt(["build", "--selector", "medallion"])
        return _summarise_dbt(res), res

    timed("dbt build medallion", _medallion)

    def _docs() -> tuple[str, Any]:
        res = rt.dbt(["docs", "generate"])
        return "target/index.html, target/catalog.json", res

    timed("dbt docs generate", _docs)

    def _train() -> tuple[str, Any]:
        res = train.train(rt)
        best = res.best
        return (
            f"v{res.model_version} ({res.best_candidate}), AP {best.metrics['average_precision']:.3f}",
            res,
        )

    result.train = timed("ml train", _train)

    def _validate() -> tuple[str, Any]:
        report = validate.validate(rt)
        if not report.passed and report.champion_version is None:
            # Nothing to score with: stop here with the verdict, not later with "no champion".
            raise ValidationFailed(
                f"{report.summary()}; nothing was promoted and there is no champion to score with"
            )
        return (
            "passed" if report.passed else f"failed, champion v{report.champion_version} kept"
        ), report

    result.validation = timed("ml validate", _validate)

    if result.validation.passed:

        def _card() -> tuple[str, Any]:
            version = result.train.model_version
            card = write_model_card(
                rt, version, MODEL_CARDS / f"model_card_{rt.model_name}_v{version}.html"
            )
            return f"{card.path} ({card.sections} sections, logged to the version's run)", card

        result.model_card = timed("ml model-card", _card)

        def _promote() -> tuple[str, Any]:
            change = promote.promote(rt, reason="ml run: validated challenger", require_card=True)
            return f"champion -> v{change.champion_version}", change

        result.promotion = timed("ml promote", _promote)

    def _score() -> tuple[str, Any]:
        res = score.score(rt)
        return f"{res.rows_added:,} rows by v{res.model_version}, {res.alerts:,} alerts", res

    result.score = timed("ml score", _score)

    def _downstream() -> tuple[str, Any]:
        res = rt.dbt(["build", "--selector", "downstream"])
        return _summarise_dbt(res), res

    timed("dbt build downstream", _downstream)
    return result


def where_to_look(rt: Runtime) -> list[tuple[str, str]]:
    """Commands that open what the run produced."""
    target = rt.target
    where = duckdb_path(target) if target.type == "duckdb" else f"target {target.name}"
    return [
        ("MLflow UI", f".venv/bin/mlflow ui --backend-store-uri {rt.settings.mlflow.tracking_uri}"),
        ("dbt lineage", "make docs-serve   (or: .venv/bin/dbt docs serve)"),
        ("warehouse", f"{where} (gold.fraud_alerts, gold.model_performance_daily, ...)"),
    ]
