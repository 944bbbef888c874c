"""The ``ml`` command: a thin typer layer over plain functions.

Each command parses its options, loads settings once, calls one function and prints with rich.
Errors a user can cause (:class:`ml.errors.FraudopsError`) end in one red line and exit code 1.
"""

from __future__ import annotations

import atexit
import functools
import gc
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from ml.errors import FraudopsError

app = typer.Typer(
    name="ml",
    help="fraudops: simulate card transactions, train/validate/promote/score the fraud model, monitor it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a FraudopsError into one line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FraudopsError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


def batch_gc(func: Callable[..., Any]) -> Callable[..., Any]:
    """For a short batch command (``ml score``): no cyclic garbage collection while it runs or
    when the interpreter exits.

    The command imports MLflow, SQLAlchemy, scikit-learn and pandas: several hundred thousand
    long-lived objects, which CPython's cyclic collector rescans on every full collection during
    the imports and again while the interpreter shuts down. That was about 3 of the 12.5 s of an
    ``ml score`` run (bench/bench_score.py). The command's own data (arrays, frames) is freed by
    reference counting. The collector is enabled again when the command returns (tests call
    commands in one process); ``gc.freeze`` at exit moves what is left out of the final
    collections.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        atexit.unregister(gc.freeze)  # once, however often the command runs in one process
        atexit.register(gc.freeze)  # runs before the interpreter's final collections
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


def _target_settings(target: str | None, settings_file: str | None = None, **overrides: Any) -> Any:
    """Settings for a command, with the MLflow locations and model name of its dbt ``target``
    (ml.mlflow_uris): one ``--target`` switches the warehouse and MLflow together."""
    from ml.mlflow_uris import settings_for_target
    from ml.settings import load_settings

    return settings_for_target(load_settings(settings_file, **overrides), target)


# ---------------------------------------------------------------------------------------------
# Commands are added below, one block each (simulate, train, evaluate, validate, promote, score,
# ...). Keep each block thin: options -> load_settings -> one function call -> rich output.
# ---------------------------------------------------------------------------------------------


# --- ml simulate -------------------------------------------------------------------------------


_DRIFT = typer.Option(
    None,
    metavar="KIND",
    help="Inject drift from --drift-start (repeatable): card_testing, terminal_compromise_rate, "
    "genuine_amount_shift or genuine_activity_shift. Replaces simulation.drift of the settings. "
    "See docs/operations.md.",
)


@app.command("simulate")
@user_errors
def simulate_command(
    customers: int | None = typer.Option(
        None, min=1, help="Number of customers (settings default: 5000)."
    ),
    terminals: int | None = typer.Option(
        None, min=1, help="Number of terminals (settings default: 10000)."
    ),
    days: int | None = typer.Option(None, min=1, help="Days simulated (settings default: 183)."),
    start: str | None = typer.Option(
        None, help="First simulated day, YYYY-MM-DD (settings default: 2018-04-01)."
    ),
    seed: int | None = typer.Option(
        None, help="Random seed; same seed, same world (settings default: 0)."
    ),
    label_delay_days: int | None = typer.Option(
        None,
        min=0,
        help="Fraud reports arrive up to this many days after the transaction (settings default: 7).",
    ),
    landing_root: str | None = typer.Option(
        None, help="Landing zone folder (settings default: data/landing)."
    ),
    from_day: str | None = typer.Option(
        None, help="Write landing files from this day on, YYYY-MM-DD (default: first day)."
    ),
    to_day: str | None = typer.Option(
        None, help="Write landing files up to this day, inclusive, YYYY-MM-DD (default: last day)."
    ),
    drift: list[str] | None = _DRIFT,
    drift_start: str | None = typer.Option(
        None, help="First day of the --drift, YYYY-MM-DD (required with --drift)."
    ),
    drift_end: str | None = typer.Option(
        None, help="Last day of the --drift, inclusive, YYYY-MM-DD (default: the last simulated day)."
    ),
    drift_strength: float | None = typer.Option(
        None,
        min=0,
        help="Strength of the --drift: cards tested / terminals compromised per day (default 5 / 6), "
        "or the factor on genuine amounts / activity (default 1.5).",
    ),
) -> None:
    """Simulate card transactions and fraud reports and write them as landing files."""
    from rich.table import Table

    from ml.errors import ConfigError
    from ml.landing import parse_day, simulate_landing
    from ml.settings import load_settings

    simulation = {
        "customers": customers,
        "terminals": terminals,
        "days": days,
        "start": parse_day(start, "--start"),
        "seed": seed,
        "label_delay_days": label_delay_days,
    }
    overrides = {"simulation": {k: v for k, v in simulation.items() if v is not None}}
    if drift:
        if drift_start is None:
            raise ConfigError("--drift needs --drift-start YYYY-MM-DD (the first drifted day)")
        overrides["simulation"]["drift"] = [
            {
                "kind": kind,
                "start": parse_day(drift_start, "--drift-start"),
                "end": parse_day(drift_end, "--drift-end"),
                "strength": drift_strength,
            }
            for kind in drift
        ]
    elif drift_start or drift_end or drift_strength is not None:
        raise ConfigError("--drift-start/--drift-end/--drift-strength need --drift KIND")
    if landing_root is not None:
        overrides["landing"] = {"root": landing_root}
    settings = load_settings(**overrides)
    result = simulate_landing(
        settings.simulation,
        settings.landing.root,
        from_day=parse_day(from_day, "--from-day"),
        to_day=parse_day(to_day, "--to-day"),
    )

    table = Table(title="ml simulate", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("days written", f"{len(result.days)} ({result.days[0]} .. {result.days[-1]})")
    table.add_row("transactions", f"{result.transactions:,}")
    table.add_row("frauds", f"{result.frauds:,}")
    table.add_row("fraud rate", f"{result.fraud_rate:.3%}")
    for scenario in sorted({1, 2, 3} | set(result.frauds_by_scenario)):
        table.add_row(f"  scenario {scenario}", f"{result.frauds_by_scenario.get(scenario, 0):,}")
    for event in settings.simulation.drift:
        until = f"..{event.end}" if event.end else " on"
        table.add_row(f"drift {event.kind}", f"{event.strength:g} from {event.start}{until}")
    table.add_row("fraud reports written", f"{result.fraud_reports:,}")
    table.add_row("reports not arrived yet", f"{result.reports_pending:,}")
    table.add_row(
        "seconds (simulate + write)", f"{result.simulate_seconds:.1f} + {result.write_seconds:.1f}"
    )
    table.add_row("files written", f"{len(result.files)}")
    console.print(table)
    console.print(f"landing files under [bold]{result.root}[/]", soft_wrap=True, highlight=False)


# --- ml train / ml evaluate --------------------------------------------------------------------
import datetime as _dt


def _training_settings(
    test_end: _dt.datetime | None,
    train_days: int | None,
    delay_days: int | None,
    test_days: int | None,
    candidates: list[str] | None,
    target: str | None,
) -> Any:
    """Settings with the window/candidate options of `ml train` / `ml evaluate` as overrides,
    and the MLflow locations of the dbt ``target`` (ml.mlflow_uris)."""
    training = {
        "test_end": test_end.date() if test_end is not None else None,
        "train_days": train_days,
        "delay_days": delay_days,
        "test_days": test_days,
        "candidates": candidates or None,
    }
    return _target_settings(target, training={k: v for k, v in training.items() if v is not None})


_TEST_END = typer.Option(
    None, formats=["%Y-%m-%d"], help="Last test day, YYYY-MM-DD (default: last day with mature labels)."
)
_TRAIN_DAYS = typer.Option(None, min=1, help="Days of training data (settings default: 7).")
_DELAY_DAYS = typer.Option(None, min=0, help="Label-delay gap between training and test (default: 7).")
_TEST_DAYS = typer.Option(None, min=1, help="Days of test data (settings default: 7).")
_CANDIDATES = typer.Option(
    None, "--candidate", help="Candidate to train (repeatable; default: training.candidates)."
)
_TARGET = typer.Option(None, help="dbt target whose warehouse holds the feature table.")


@app.command("train")
@user_errors
def train_command(
    test_end: _dt.datetime | None = _TEST_END,
    train_days: int | None = _TRAIN_DAYS,
    delay_days: int | None = _DELAY_DAYS,
    test_days: int | None = _TEST_DAYS,
    candidates: list[str] | None = _CANDIDATES,
    target: str | None = _TARGET,
    dbt_target_path: str | None = typer.Option(
        None, help="dbt target folder with run_results.json (default: $DBT_TARGET_PATH or ./target)."
    ),
) -> None:
    """Train the candidates, log them to MLflow and register the best as the challenger."""
    from rich.table import Table

    from ml.train import train

    settings = _training_settings(test_end, train_days, delay_days, test_days, candidates, target)
    result = train(settings, target=target, dbt_target_path=dbt_target_path)

    w = result.windows
    console.print(
        f"train {w.train_start}..{w.train_end} ({result.train_rows:,} tx), "
        f"test {w.test_start}..{w.test_end} ({result.test_rows:,} tx)",
        highlight=False,
    )
    table = Table(title="ml train — test metrics (* registered)", title_justify="left")
    k = settings.model.top_k_cards
    rows = {
        "ROC AUC": ("roc_auc", "{:.3f}"),
        "average precision": ("average_precision", "{:.3f}"),
        f"card precision@{k}": (f"card_precision_at_{k}", "{:.3f}"),
        "precision at threshold": ("precision_at_threshold", "{:.3f}"),
        "recall at threshold": ("recall_at_threshold", "{:.3f}"),
        "alerts per day": ("alerts_per_day", "{:,.1f}"),
        "fraud amount caught": ("fraud_amount_caught", "{:,.0f}"),
    }
    table.add_column("metric", style="bold")
    for candidate in result.candidates:
        mark = " *" if candidate.name == result.best_candidate else ""
        table.add_column(candidate.name + mark, justify="right", no_wrap=True)
    for label, (key, fmt) in rows.items():
        table.add_row(label, *(fmt.format(c.metrics[key]) for c in result.candidates))
    console.print(table)
    console.print(
        f"registered [bold]{result.model_name}[/] version [bold]{result.model_version}[/] "
        f"({result.best_candidate}) with alias [bold]challenger[/]; MLflow run {result.run_id}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("evaluate")
@user_errors
def evaluate_command(
    protocol: str = typer.Option("prequential", help="Evaluation protocol (prequential)."),
    folds: int | None = typer.Option(None, min=1, help="Number of folds (settings default: 4)."),
    test_end: _dt.datetime | None = _TEST_END,
    train_days: int | None = _TRAIN_DAYS,
    delay_days: int | None = _DELAY_DAYS,
    test_days: int | None = _TEST_DAYS,
    candidates: list[str] | None = _CANDIDATES,
    target: str | None = _TARGET,
) -> None:
    """Estimate each candidate's performance and its spread over time (prequential folds)."""
    from rich.table import Table

    from ml.evaluate import evaluate

    settings = _training_settings(test_end, train_days, delay_days, test_days, candidates, target)
    result = evaluate(settings, protocol, folds=folds, target=target)

    first, last = result.windows[-1], result.windows[0]
    table = Table(
        title=f"ml evaluate — {protocol}, {len(result.windows)} folds, "
        f"tests {first.test_start}..{last.test_end}",
        title_justify="left",
    )
    table.add_column("candidate", style="bold")
    headers = {"roc_auc": "ROC AUC", "average_precision": "avg precision"}
    for metric in result.metric_names:
        table.add_column(headers.get(metric, metric.replace("card_precision_at_", "card prec.@")), justify="right")
    for candidate in result.summary.index:
        cells = []
        for metric in result.metric_names:
            mean, std = result.mean_std(candidate, metric)
            cells.append(f"{mean:.3f} ± {std:.3f}")
        table.add_row(candidate, *cells)
    console.print(table)
    if result.run_id:
        console.print(f"MLflow run {result.run_id}", highlight=False)


# --- ml validate / ml promote / ml rollback / ml score ---------------------------------------
def _date(value: _dt.datetime | None) -> _dt.date | None:
    return value.date() if value is not None else None


_VALIDATION_END = typer.Option(
    None,
    formats=["%Y-%m-%d"],
    help="Last day of the validation window, YYYY-MM-DD (default: last day with mature labels).",
)
_SCORE_START = typer.Option(None, formats=["%Y-%m-%d"], help="First tx_date to score, YYYY-MM-DD.")
_SCORE_END = typer.Option(None, formats=["%Y-%m-%d"], help="Last tx_date to score, YYYY-MM-DD.")


@app.command("validate")
@user_errors
def validate_command(
    test_end: _dt.datetime | None = _VALIDATION_END,
    target: str | None = _TARGET,
) -> None:
    """Compare @challenger with @champion on the latest mature test window; exit 2 if it fails."""
    from rich.table import Table

    from ml.errors import ValidationFailed
    from ml.registry import validate

    settings = _target_settings(target)
    report = validate(settings, test_end=_date(test_end), target=target)

    w = report.windows
    against = f"v{report.champion_version} (champion)" if report.champion_version else "no champion"
    k = settings.model.top_k_cards
    models = Table(
        title=f"ml validate — {report.model_name} v{report.challenger_version} (challenger) vs {against}, "
        f"test {w.test_start}..{w.test_end} ({report.test_rows:,} tx, {report.test_frauds:,} frauds)",
        title_justify="left",
    )
    models.add_column("model", style="bold")
    metric_names = {"ROC AUC": "roc_auc", "avg precision": "average_precision", f"card prec.@{k}": f"card_precision_at_{k}"}
    for header in metric_names:
        models.add_column(header, justify="right")
    for label, values in (("challenger", report.challenger_metrics), ("champion", report.champion_metrics)):
        if values is not None:
            models.add_row(label, *(f"{values[key]:.3f}" for key in metric_names.values()))
    console.print(models)

    rules = Table(title="rules", title_justify="left")
    for column, justify in (("rule", "left"), ("value", "right"), ("", "center"), ("threshold", "right"), ("result", "left")):
        rules.add_column(column, justify=justify)
    for rule in report.rules:
        result = "[green]pass[/]" if rule.passed else "[bold red]FAIL[/]"
        rules.add_row(rule.name, f"{rule.value:.4f}", rule.comparison, f"{rule.threshold:g}", result)
    console.print(rules)
    console.print(
        f"verdict written to {report.model_name} v{report.challenger_version} (tag validation_status="
        f"{report.status}) and MLflow run {report.run_id}",
        soft_wrap=True,
        highlight=False,
    )
    if not report.passed:
        raise ValidationFailed(report.summary())
    console.print("[bold green]passed[/]: promote it with [bold]ml promote[/]", highlight=False)


@app.command("promote")
@user_errors
def promote_command(
    version: str | None = typer.Option(None, help="Version to promote (default: the @challenger)."),
    force: bool = typer.Option(False, "--force", help="Promote even if not validated (needs --reason)."),
    reason: str | None = typer.Option(None, help="Why (recorded on the version and in MLflow)."),
    target: str | None = _TARGET,
) -> None:
    """Move alias champion to the validated challenger; the old champion becomes previous_champion."""
    from ml.registry import promote

    settings = _target_settings(target)
    change = promote(settings, version=version, force=force, reason=reason, target=target, require_card=True)
    replaced = f"v{change.replaced_version} is now previous_champion" if change.replaced_version else "first champion"
    forced = " [bold yellow](forced)[/]" if change.forced else ""
    console.print(
        f"[bold]{change.model_name}@champion[/] = v{change.champion_version}{forced} ({replaced}); "
        f"by {change.user}: {change.reason}; MLflow run {change.run_id}",
        soft_wrap=True,
        highlight=False,
    )
    if any(change.reference_rows_added):
        console.print(
            f"wrote its training reference to {settings.scoring.feature_reference_table} "
            f"({change.reference_rows_added[0]} bins, {change.reference_rows_added[1]} sample rows)",
            highlight=False,
        )


@app.command("rollback")
@user_errors
def rollback_command(
    reason: str = typer.Option(..., help="Why the champion is withdrawn (recorded)."),
    target: str | None = _TARGET,
) -> None:
    """Move alias champion back to previous_champion."""
    from ml.registry import rollback

    settings = _target_settings(target)
    change = rollback(settings, reason=reason, target=target)
    previous = f"v{change.previous_champion_version}" if change.previous_champion_version else "none"
    console.print(
        f"[bold]{change.model_name}@champion[/] = v{change.champion_version} (rolled back from "
        f"v{change.replaced_version}; previous_champion: {previous}); by {change.user}: {change.reason}; "
        f"MLflow run {change.run_id}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("score")
@user_errors
@batch_gc
def score_command(
    start: _dt.datetime | None = _SCORE_START,
    end: _dt.datetime | None = _SCORE_END,
    target: str | None = _TARGET,
) -> None:
    """Score every gold transaction the @champion has not scored yet into scoring.predictions."""
    from rich.table import Table

    from ml.score import score

    settings = _target_settings(target)
    result = score(settings, start=_date(start), end=_date(end), target=target)

    table = Table(title=f"ml score — {result.model_name} v{result.model_version} (champion)", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("transactions not scored yet", f"{result.rows_read:,}")
    table.add_row("predictions written", f"{result.rows_added:,} to {settings.scoring.predictions_table}")
    table.add_row(f"alerts (score >= {result.alert_threshold:g})", f"{result.alerts:,}")
    table.add_row("reasons written (top 3 per alert)", f"{result.explanations_added:,} to {settings.scoring.explanations_table}")
    phases = [p for p in ("registry", "read", "predict", "explain", "write") if p in result.seconds]
    table.add_row("seconds (" + " + ".join(phases) + ")", " + ".join(f"{result.seconds[p]:.2f}" for p in phases))
    table.add_row("rows/s", f"{result.rows_per_second:,.0f}")
    console.print(table)


# --- ml report -----------------------------------------------------------------------------------
@app.command("model-card")
@user_errors
def model_card_command(
    version: str = typer.Option(..., help="Registered version to document."),
    output: str | None = typer.Option(None, help="HTML file (default: model_card_<name>_v<N>.html)."),
    log: bool = typer.Option(True, "--log/--no-log", help="Log it to the version's run and link it (ml promote needs it)."),
    target: str | None = _TARGET,
) -> None:
    """Write the model card of a version (SR 11-7 sections, one self-contained HTML file)."""
    from ml.model_card import write_model_card

    settings = _target_settings(target)
    result = write_model_card(settings, version, output, log=log, target=target)
    logged = f"; logged as {result.artifact_uri}" if result.artifact_uri else ""
    console.print(f"model card of {settings.model.name} v{version}: {result.sections} sections{logged}", highlight=False)
    print(result.path)


@app.command("report")
@user_errors
def report_command(
    output: str = typer.Option(
        "reports/fraudops-report.html", help="HTML file to write (one self-contained file)."
    ),
    target: str | None = _TARGET,
    registry: bool = typer.Option(
        True, "--registry/--no-registry", help="Read the MLflow aliases (champion, challenger, ...)."
    ),
) -> None:
    """Write the monitoring report: performance, alerts, drift, champion history (one HTML file)."""
    from ml.report import write_report

    settings = _target_settings(target)
    result = write_report(settings, output, target=target, include_registry=registry)
    for title, status in result.sections:
        shown = "[green]" + status + "[/]" if status in ("chart", "table") else f"[yellow]{status}[/]"
        console.print(f"  {title}: {shown}", highlight=False, soft_wrap=True)
    console.print(
        f"{result.charts} charts, {result.size_bytes / 1e6:.1f} MB; open it in a browser (works offline):",
        highlight=False,
    )
    print(result.path)


# --- ml run ------------------------------------------------------------------------------------
@app.command("run")
@user_errors
def run_command(
    simulate: bool = typer.Option(True, help="Simulate the landing files first (--no-simulate: use what has landed)."),
    target: str | None = typer.Option(None, help="dbt target (default: settings dbt.target, i.e. local)."),
) -> None:
    """The whole loop: simulate -> dbt build -> train -> validate -> promote -> score -> monitoring."""
    from rich.table import Table

    from ml import pipeline

    settings = _target_settings(target)
    with console.status("starting") as status:

        def on_step(name: str) -> None:
            status.update(f"[bold]{name}[/] ...")

        result = pipeline.run(settings, simulate=simulate, target=target, on_step=on_step)

    steps = Table(title="ml run", title_justify="left")
    steps.add_column("step", style="bold")
    steps.add_column("seconds", justify="right")
    steps.add_column("result")
    for step in result.steps:
        steps.add_row(step.name, f"{step.seconds:.1f}", step.detail)
    console.print(steps)

    if result.train is not None:
        metrics = Table(title=f"{result.train.model_name} v{result.train.model_version}: test window {result.train.windows.test_start} .. {result.train.windows.test_end}", title_justify="left")
        metrics.add_column("candidate", style="bold")
        shown = ["roc_auc", "average_precision", f"card_precision_at_{settings.model.top_k_cards}", "precision_at_threshold", "recall_at_threshold", "alerts_per_day"]
        for name in shown:
            metrics.add_column(name.replace("_", " "), justify="right")
        for cand in result.train.candidates:
            mark = " *" if cand.name == result.train.best_candidate else ""
            metrics.add_row(cand.name + mark, *(f"{cand.metrics.get(m, float('nan')):.3f}" for m in shown))
        console.print(metrics)

    look = Table(title="where to look", show_header=False, title_justify="left")
    look.add_column("what", style="bold")
    look.add_column("command")
    for what, command in pipeline.where_to_look(settings):
        look.add_row(what, command)
    console.print(look)


# --- ml replay ---------------------------------------------------------------------------------
def _replay_line(report: Any) -> str:
    """One progress line per replayed day (rich markup)."""
    ap = (
        f"AP {report.matured_day:%m-%d} {report.matured_average_precision:.3f}"
        if report.matured_average_precision is not None
        else "AP -"
    )
    drift = ", ".join(report.drifted_features[:3]) + (" ..." if len(report.drifted_features) > 3 else "")
    alerts = " ".join(f"[bold red]{a}[/]" for a in report.monitoring_alerts)
    decisions = "; ".join(report.decisions)
    scored = f"scored {report.scored:>6,} by v{report.scored_by}" if report.scored_by else f"{'':>20}"
    return (
        f"{report.day} {report.phase:<9} {report.transactions:>7,} tx {report.fraud_reports:>5,} reports  "
        f"{scored}  {report.alerts:>4,} alerts  {ap:<16} champion v{report.champion_version}  "
        f"{report.seconds.get('total', 0.0):5.1f} s"
        + (f"\n    drift: {drift}" if drift else "")
        + (f"\n    {alerts}" if alerts else "")
        + (f"\n    [bold]{decisions}[/]" if decisions else "")
    )


_REPLAY_START = typer.Option(
    None, formats=["%Y-%m-%d"], help="First replayed day (default: replay.start, else the day after the warm-up)."
)
_REPLAY_END = typer.Option(
    None, formats=["%Y-%m-%d"], help="Last replayed day, inclusive (default: replay.end, else the last simulated day)."
)


@app.command("replay")
@user_errors
def replay_command(
    start: _dt.datetime | None = _REPLAY_START,
    end: _dt.datetime | None = _REPLAY_END,
    settings_file: str | None = typer.Option(
        None, "--settings", help="Settings file (default: fraudops.yaml or $FRAUDOPS_SETTINGS_FILE), e.g. demo/drift-demo.yaml."
    ),
    target: str | None = _TARGET,
) -> None:
    """Operate the system day by day over the simulated world: land, build, score, monitor, retrain.

    Bootstraps a champion on the warm-up days first. Run again, an interrupted replay continues
    where it stopped. Every decision is a row of scoring.model_events (docs/operations.md).
    """
    from ml.replay import replay

    settings = _target_settings(target, settings_file)
    current = {"day": None}

    with console.status("ml replay: simulating the world") as status:

        def on_step(day: Any, step: str) -> None:
            current["day"] = day
            status.update(f"{day}: {step}")

        def on_day(report: Any) -> None:
            console.print(_replay_line(report), highlight=False, soft_wrap=True)

        try:
            result = replay(
                settings, start=_date(start), end=_date(end), target=target, on_step=on_step, on_day=on_day
            )
        except KeyboardInterrupt:
            err_console.print(
                f"[bold yellow]interrupted[/] on {current['day']}; run the same command again to continue from there",
                highlight=False,
            )
            raise typer.Exit(code=130) from None

    if result.resumed_after is not None:
        console.print(f"resumed after {result.resumed_after}", highlight=False)
    if not result.days and result.bootstrap is None:
        console.print(f"nothing to do: {result.start}..{result.end} is replayed already", highlight=False)
        return
    last = (result.days or [result.bootstrap])[-1]
    retrainings = sum(1 for d in result.days for x in d.decisions if x.startswith("trained"))
    console.print(
        f"replayed {len(result.days)} day(s) up to {last.day} in {result.seconds:.0f} s "
        f"({retrainings} retraining(s)); champion v{last.champion_version}. "
        "Decisions: scoring.model_events; the whole story: [bold]ml report[/]",
        highlight=False,
        soft_wrap=True,
    )
