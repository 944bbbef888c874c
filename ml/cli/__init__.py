"""The ``ml`` command (typer): the app and one module per group of commands."""

from ml.cli import lifecycle, operations, serving, shadow, world
from ml.cli.app import app

__all__ = ["app", "lifecycle", "operations", "serving", "shadow", "world"]
