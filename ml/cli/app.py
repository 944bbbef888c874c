"""The ``ml`` typer app and what every command shares: one-line user errors, the runtime.

Each command (ml/cli/<group>.py) parses its options, builds the runtime once, calls one plain
function and prints with rich. Errors a user can cause (:class:`FraudopsError`) end in one red
line and exit code 1.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import functools
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.console import Console

from ml.platform.errors import FraudopsError

app = typer.Typer(
    name="ml",
    help="fraudops: simulate card transactions, train/validate/promote/score the fraud model, monitor it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
#: Width of tables and lines when the output is not a terminal (a log, a CI job): wide enough
#: that tables are not folded to rich's default of 80 columns.
LOG_WIDTH = 200


def _fit_consoles() -> None:
    for each in (console, err_console):
        if not each.is_terminal and each._width is None:
            each.width = LOG_WIDTH


@contextlib.contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """``on_step(name)`` for a long command: a live status line on a terminal; elsewhere (a log,
    a job) one plain line per step with the seconds since the command started."""
    started = time.perf_counter()
    if console.is_terminal:
        with console.status(f"{title}: starting") as status:
            yield lambda step: status.update(f"[bold]{step}[/] ...")
        return

    def line(step: str) -> None:
        console.print(
            f"[{time.perf_counter() - started:7.1f} s] {step}", highlight=False, soft_wrap=True
        )

    yield line


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"fraudops {version('fraudops')}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(
        False,
        "--version",
        metavar="",
        callback=_version,
        is_eager=True,
        help="Print the fraudops version and exit.",
    ),
) -> None:
    """fraudops: simulate card transactions, train/validate/promote/score the fraud model, monitor it."""


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a FraudopsError into one line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _fit_consoles()
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


def _runtime(target: str | None, settings_file: str | None = None, **overrides: Any) -> Any:
    """The command's :class:`~ml.platform.runtime.Runtime`, built once: settings (with the
    command's options as overrides) and the dbt ``target``, whose MLflow locations follow it."""
    from ml.platform.runtime import Runtime
    from ml.platform.settings import load_settings

    return Runtime.build(load_settings(settings_file, **overrides), target)


def _date(value: _dt.datetime | None) -> _dt.date | None:
    return value.date() if value is not None else None


TARGET = typer.Option(None, help="dbt target (default: $FRAUDOPS_TARGET, else local).")
SETTINGS = typer.Option(
    None,
    "--settings",
    help="Settings file (default: fraudops.yaml or $FRAUDOPS_SETTINGS_FILE), e.g. demo/drift-demo.yaml.",
)
#: Every date option reads YYYY-MM-DD (one style for all commands).
DATE_FORMATS = ["%Y-%m-%d"]


def date_option(help_text: str) -> Any:
    """A ``YYYY-MM-DD`` option (typer parses it; a bad date is a usage error naming the option)."""
    return typer.Option(None, formats=DATE_FORMATS, metavar="YYYY-MM-DD", help=help_text)
