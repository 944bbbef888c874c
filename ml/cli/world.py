"""``ml simulate``: landing files from the handbook's simulator."""

from __future__ import annotations

import datetime as _dt

import typer

from ml.cli.app import SETTINGS, _date, app, console, date_option, user_errors

# --- ml simulate -------------------------------------------------------------------------------


_DRIFT = typer.Option(
    None,
    metavar="KIND",
    help="Inject drift from --drift-start (repeatable): card_testing, terminal_compromise_rate, "
    "genuine_amount_shift or genuine_activity_shift. Replaces simulation.drift of the settings. "
    "See docs/operations.md.",
)

_START = date_option("First simulated day (settings default: 2018-04-01).")
_FROM_DAY = date_option("Write landing files from this day on (default: first day).")
_TO_DAY = date_option("Write landing files up to this day, inclusive (default: last day).")
_DRIFT_START = date_option("First day of the --drift (required with --drift).")
_DRIFT_END = date_option("Last day of the --drift, inclusive (default: the last simulated day).")


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
    start: _dt.datetime | None = _START,
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
    from_day: _dt.datetime | None = _FROM_DAY,
    to_day: _dt.datetime | None = _TO_DAY,
    drift: list[str] | None = _DRIFT,
    drift_start: _dt.datetime | None = _DRIFT_START,
    drift_end: _dt.datetime | None = _DRIFT_END,
    drift_strength: float | None = typer.Option(
        None,
        min=0,
        help="Strength of the --drift: cards tested / terminals compromised per day (default 5 / 6), "
        "or the factor on genuine amounts / activity (default 1.5).",
    ),
    settings_file: str | None = SETTINGS,
) -> None:
    """Simulate card transactions and fraud reports and write them as landing files."""
    from rich.table import Table

    from ml.platform.errors import ConfigError
    from ml.platform.settings import DRIFT_KINDS, load_settings
    from ml.world.landing import simulate_landing

    simulation = {
        "customers": customers,
        "terminals": terminals,
        "days": days,
        "start": _date(start),
        "seed": seed,
        "label_delay_days": label_delay_days,
    }
    overrides = {"simulation": {k: v for k, v in simulation.items() if v is not None}}
    if drift:
        unknown = [kind for kind in drift if kind not in DRIFT_KINDS]
        if unknown:
            raise ConfigError(
                f"--drift {unknown[0]} is not a kind of drift; choose one of {', '.join(DRIFT_KINDS)}"
            )
        if drift_start is None:
            raise ConfigError("--drift needs --drift-start YYYY-MM-DD (the first drifted day)")
        overrides["simulation"]["drift"] = [
            {
                "kind": kind,
                "start": _date(drift_start),
                "end": _date(drift_end),
                "strength": drift_strength,
            }
            for kind in drift
        ]
    elif drift_start or drift_end or drift_strength is not None:
        raise ConfigError("--drift-start/--drift-end/--drift-strength need --drift KIND")
    if landing_root is not None:
        overrides["landing"] = {"root": landing_root}
    settings = load_settings(settings_file, **overrides)
    result = simulate_landing(
        settings.simulation,
        settings.landing.root,
        from_day=_date(from_day),
        to_day=_date(to_day),
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
