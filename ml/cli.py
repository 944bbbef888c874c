"""The ``ml`` command: a thin typer layer over plain functions.

Each command parses its options, loads settings once, calls one function and prints with rich.
Errors a user can cause (:class:`ml.errors.FraudopsError`) end in one red line and exit code 1.
"""

from __future__ import annotations

import functools
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


# ---------------------------------------------------------------------------------------------
# Commands are added below, one block each (simulate, train, evaluate, validate, promote, score,
# ...). Keep each block thin: options -> load_settings -> one function call -> rich output.
# ---------------------------------------------------------------------------------------------
