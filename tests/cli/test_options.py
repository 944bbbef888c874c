"""What every `ml` command shares: --settings, one date style, --version, flags shown as flags."""

from __future__ import annotations

import datetime as dt

import typer
from typer.testing import CliRunner

from ml.cli import app

WIDE = {"COLUMNS": "200"}


def _commands() -> dict:
    """Every command of `ml`, those of its groups (``ml shadow import``) included."""
    found = {}
    for name, command in typer.main.get_command(app).commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found.update({f"{name} {sub}": c for sub, c in subcommands.items()})
        else:
            found[name] = command
    return found


def test_every_command_takes_a_settings_file() -> None:
    missing = [
        name
        for name, command in _commands().items()
        if "--settings" not in {opt for p in command.params for opt in p.opts}
    ]
    assert missing == []


def test_every_date_option_reads_yyyy_mm_dd() -> None:
    # given every option that names a day
    dated = 0
    for name, command in _commands().items():
        for param in command.params:
            if not (
                param.name in ("day", "start", "end")
                or param.name.endswith(("_day", "_start", "_end"))
            ):
                continue
            dated += 1
            # then it is typer's DateTime in the one format (not a string parsed by the command)
            where = f"ml {name} {param.opts}"
            described = param.type_descriptor
            assert described.annotation is dt.datetime, where
            assert list(described.parameter_info.formats) == ["%Y-%m-%d"], where
            assert param.metavar == "YYYY-MM-DD", where
    assert dated >= 12


def test_ml_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("fraudops ")


def test_force_is_shown_as_the_flag_it_is() -> None:
    # `--force <bool>` in the help suggested `--force true`, which fails
    result = CliRunner().invoke(app, ["promote", "--help"], env=WIDE)
    (line,) = [line for line in result.output.splitlines() if "--force" in line]
    assert "<bool>" not in line


def test_without_a_terminal_progress_is_one_line_per_step_and_tables_are_wide(capsys) -> None:
    # given the output is not a terminal (a log, a CI job)
    import importlib

    app_module = importlib.import_module("ml.cli.app")  # the module (ml.cli.app is also the Typer)
    app_module.console._width = None  # as configured at import: rich's default
    app_module._fit_consoles()
    # then tables get the full width, not rich's 80 columns ...
    assert app_module.console.width == app_module.LOG_WIDTH
    # ... and each step is one plain line with the seconds since the command started
    with app_module.progress("ml run") as on_step:
        on_step("dbt build medallion: 156 pass, 13 success")
        on_step("ml train")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("s] dbt build medallion: 156 pass, 13 success")
    assert lines[0].startswith("[") and lines[1].endswith("s] ml train")
