"""``ml report``, ``ml run``, ``ml replay``, ``ml dbt``: operating the system."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import typer

from ml.cli.app import (
    SETTINGS,
    TARGET,
    _date,
    _runtime,
    app,
    console,
    date_option,
    err_console,
    progress,
    user_errors,
)


# --- ml report -----------------------------------------------------------------------------------
@app.command("report")
@user_errors
def report_command(
    output: str = typer.Option(
        "reports/fraudops-report.html", help="HTML file to write (one self-contained file)."
    ),
    target: str | None = TARGET,
    registry: bool = typer.Option(
        True,
        "--registry/--no-registry",
        help="Read the MLflow aliases (champion, challenger, ...).",
    ),
    settings_file: str | None = SETTINGS,
) -> None:
    """Write the monitoring report: performance, alerts, drift, champion history (one HTML file)."""
    from ml.operations.report import write_report

    result = write_report(_runtime(target, settings_file), output, include_registry=registry)
    for title, status in result.sections:
        shown = (
            "[green]" + status + "[/]" if status in ("chart", "table") else f"[yellow]{status}[/]"
        )
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
    simulate: bool = typer.Option(
        True, help="Simulate the landing files first (--no-simulate: use what has landed)."
    ),
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """The whole loop: simulate -> dbt build -> train -> validate -> promote -> score -> monitoring."""
    from rich.table import Table

    from ml.operations import pipeline
    from ml.platform.mlflow_store import quiet_mlflow

    rt = _runtime(target, settings_file)
    settings = rt.settings
    with progress("ml run") as on_step, quiet_mlflow():
        result = pipeline.run(
            rt,
            simulate=simulate,
            on_step=on_step if console.is_terminal else None,
            on_done=None
            if console.is_terminal
            else lambda step: on_step(f"{step.name}: {step.detail} ({step.seconds:.1f} s)"),
        )

    steps = Table(title="ml run", title_justify="left")
    steps.add_column("step", style="bold")
    steps.add_column("seconds", justify="right")
    steps.add_column("result")
    for step in result.steps:
        steps.add_row(step.name, f"{step.seconds:.1f}", step.detail)
    console.print(steps)

    if result.train is not None:
        metrics = Table(
            title=f"{result.train.model_name} v{result.train.model_version}: test window {result.train.windows.test_start} .. {result.train.windows.test_end}",
            title_justify="left",
        )
        metrics.add_column("candidate", style="bold")
        shown = [
            "roc_auc",
            "average_precision",
            f"card_precision_at_{settings.model.top_k_cards}",
            "precision_at_threshold",
            "recall_at_threshold",
            "alerts_per_day",
        ]
        for name in shown:
            metrics.add_column(name.replace("_", " "), justify="right")
        for cand in result.train.candidates:
            mark = " *" if cand.name == result.train.best_candidate else ""
            metrics.add_row(
                cand.name + mark, *(f"{cand.metrics.get(m, float('nan')):.3f}" for m in shown)
            )
        console.print(metrics)

    look = Table(title="where to look", show_header=False, title_justify="left")
    look.add_column("what", style="bold")
    look.add_column("command")
    for what, command in pipeline.where_to_look(rt):
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
    drift = ", ".join(report.drifted_features[:3]) + (
        " ..." if len(report.drifted_features) > 3 else ""
    )
    alerts = " ".join(f"[bold red]{a}[/]" for a in report.monitoring_alerts)
    decisions = "; ".join(report.decisions)
    scored = (
        f"scored {report.scored:>6,} by v{report.scored_by}" if report.scored_by else f"{'':>20}"
    )
    return (
        f"{report.day} {report.phase:<9} {report.transactions:>7,} tx {report.fraud_reports:>5,} reports  "
        f"{scored}  {report.alerts:>4,} alerts  {ap:<16} champion v{report.champion_version}  "
        f"{report.seconds.get('total', 0.0):5.1f} s"
        + (f"\n    drift: {drift}" if drift else "")
        + (f"\n    {alerts}" if alerts else "")
        + (f"\n    [bold]{decisions}[/]" if decisions else "")
    )


_REPLAY_START = date_option(
    "First replayed day (default: replay.start, else the day after the warm-up)."
)
_REPLAY_END = date_option(
    "Last replayed day, inclusive (default: replay.end, else the last simulated day)."
)


@app.command("replay")
@user_errors
def replay_command(
    start: _dt.datetime | None = _REPLAY_START,
    end: _dt.datetime | None = _REPLAY_END,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
    serve_url: str | None = typer.Option(
        None,
        help="Score each day through this running `ml serve` (e.g. http://127.0.0.1:5000) instead of ml score.",
    ),
) -> None:
    """Operate the system day by day over the simulated world: land, build, score, monitor, retrain.

    Bootstraps a champion on the warm-up days first. Run again, an interrupted replay continues
    where it stopped. Every decision is a row of scoring.model_events (docs/operations.md).
    """
    from ml.operations.replay import replay

    rt = _runtime(target, settings_file)
    current = {"day": None}

    with console.status("ml replay: simulating the world") as status:

        def on_step(day: Any, step: str) -> None:
            current["day"] = day
            status.update(f"{day}: {step}")

        def on_day(report: Any) -> None:
            console.print(_replay_line(report), highlight=False, soft_wrap=True)

        try:
            result = replay(
                rt,
                start=_date(start),
                end=_date(end),
                on_step=on_step,
                on_day=on_day,
                serve_url=serve_url,
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
        console.print(
            f"nothing to do: {result.start}..{result.end} is replayed already", highlight=False
        )
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


# --- ml operate / ml retrain ---------------------------------------------------------------------
_OPERATE_DAY = date_option(
    "Business day to operate (default: the day after the last operated day; before any, "
    "the latest day the transactions feed delivered)."
)
_RETRAIN_DAY = date_option("Business day (default: the last operated day).")


@app.command("operate")
@user_errors
def operate_command(
    day: _dt.datetime | None = _OPERATE_DAY,
    allow_late: bool = typer.Option(
        False, "--allow-late", help="Operate the day even if a feed has not delivered it."
    ),
    defer_retraining: bool = typer.Option(
        False,
        "--defer-retraining",
        help="Record a due retraining (task value retrain=true) for a separate ml retrain task "
        "instead of running it (the Databricks job).",
    ),
    report: str | None = typer.Option(
        None,
        help="Where to write the report after the day (default: settings operate.report; "
        "'none': no report).",
    ),
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Operate one business day on real data: freshness gate, build, score, monitor, retrain, report.

    The same day ml replay runs (without landing it). A completed day is not operated again;
    an interrupted one resumes. Exit code 3: a feed is late.
    """
    from ml.operations.operate import operate

    rt = _runtime(target, settings_file)
    path = rt.settings.operate.report if report is None else report
    path = None if path in (None, "", "none") else path
    with progress("ml operate") as on_step:
        result = operate(
            rt,
            _date(day),
            allow_late=allow_late,
            defer_retraining=defer_retraining,
            report_path=path,
            on_step=lambda day, step: on_step(f"{day}: {step}"),
        )
    feeds = ", ".join(f"{f.feed} {f.rows:,} rows" for f in result.feeds)
    if result.already_done:
        console.print(
            f"nothing to do: {result.day} was operated already ({feeds})", highlight=False
        )
        return
    console.print(_replay_line(result.report), highlight=False, soft_wrap=True)
    if result.late:
        console.print(f"[yellow]operated without {', '.join(result.late)} (--allow-late)[/]")
    if result.report.retraining_due:
        console.print("retraining due: ml retrain runs it", highlight=False)
    if result.report.report_path:
        console.print(f"report: {result.report.report_path}", highlight=False, soft_wrap=True)


@app.command("retrain")
@user_errors
def retrain_command(
    day: _dt.datetime | None = _RETRAIN_DAY,
    settings_file: str | None = SETTINGS,
    target: str | None = TARGET,
) -> None:
    """Run the retraining that ml operate --defer-retraining recorded as due (train, validate, promote)."""
    from ml.operations.operate import retrain_due

    with progress("ml retrain"):
        report = retrain_due(_runtime(target, settings_file), _date(day))
    if report is None:
        console.print("nothing to do: no retraining is due", highlight=False)
        return
    console.print(
        f"{report.day}: {'; '.join(report.decisions) or 'retrained'}; champion v{report.champion_version}",
        highlight=False,
        soft_wrap=True,
    )


# --- ml dbt ----------------------------------------------------------------------------------------
@app.command(
    "dbt",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@user_errors
def dbt_command(
    ctx: typer.Context,
    target: str | None = TARGET,
    settings_file: str | None = SETTINGS,
) -> None:
    """Run dbt with the dbt vars derived from the settings, e.g. ml dbt build --selector medallion.

    \f
    ``ml dbt build --selector medallion``: the one way ml, the Databricks job and a person run
    dbt with the same configuration. Exits with dbt's exit code."""
    if not ctx.args:
        raise typer.BadParameter("give the dbt command, e.g. ml dbt build --selector medallion")
    rt = _runtime(target, settings_file)
    result = rt.dbt(list(ctx.args), check=False, stream=True)
    if result.returncode:
        raise typer.Exit(code=result.returncode)
