"""The ``ml`` typer app and what every command shares: one-line user errors, the runtime.

Each command (ml/cli/<group>.py) parses its options, builds the runtime once, calls one plain
function and prints with rich. Errors a user can cause (:class:`FraudopsError`) end in one red
line and exit code 1.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import gc
from collections.abc import Callable
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


def _runtime(target: str | None, settings_file: str | None = None, **overrides: Any) -> Any:
    """The command's :class:`~ml.platform.runtime.Runtime`, built once: settings (with the
    command's options as overrides) and the dbt ``target``, whose MLflow locations follow it."""
    from ml.platform.runtime import Runtime
    from ml.platform.settings import load_settings

    return Runtime.build(load_settings(settings_file, **overrides), target)


def _date(value: _dt.datetime | None) -> _dt.date | None:
    return value.date() if value is not None else None


TARGET = typer.Option(None, help="dbt target (default: $FRAUDOPS_TARGET, else local).")
