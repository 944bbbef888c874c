"""``ml report``, ``ml run``, ``ml replay``, ``ml dbt``: operating the system."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import typer

from ml.cli.app import TARGET, _date, _runtime, app, console, err_console, user_errors


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
) -> None:
    """Write the monitoring report: performance, alerts, drift, champion history (one HTML file)."""
    from ml.operations.report import write_report

    result = write_report(_runtime(target), output, include_registry=registry)
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
    target: str | None = typer.Option(
        None, help="dbt target (default: settings dbt.target, i.e. local)."
    ),
) -> None:
    """The whole loop: simulate -> dbt build -> train -> validate -> promote -> score -> monitoring."""
    from rich.table import Table

    from ml.operations import pipeline

    rt = _runtime(target)
    settings = rt.settings
    with console.status("starting") as status:

        def on_step(name: str) -> None:
            status.update(f"[bold]{name}[/] ...")

        result = pipeline.run(rt, simulate=simulate, on_step=on_step)

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


_REPLAY_START = typer.Option(
    None,
    formats=["%Y-%m-%d"],
    help="First replayed day (default: replay.start, else the day after the warm-up).",
)
_REPLAY_END = typer.Option(
    None,
    formats=["%Y-%m-%d"],
    help="Last replayed day, inclusive (default: replay.end, else the last simulated day).",
)


@app.command("replay")
@user_errors
def replay_command(
    start: _dt.datetime | None = _REPLAY_START,
    end: _dt.datetime | None = _REPLAY_END,
    settings_file: str | None = typer.Option(
        None,
        "--settings",
        help="Settings file (default: fraudops.yaml or $FRAUDOPS_SETTINGS_FILE), e.g. demo/drift-demo.yaml.",
    ),
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


# --- ml dbt ----------------------------------------------------------------------------------------
@app.command(
    "dbt",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@user_errors
def dbt_command(
    ctx: typer.Context,
    target: str | None = TARGET,
    settings_file: str | None = typer.Option(
        None,
        "--settings",
        help="Settings file (default: fraudops.yaml or $FRAUDOPS_SETTINGS_FILE).",
    ),
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
