"""Reading the `ml` command's output in tests."""

from __future__ import annotations

from typing import Any


def one_line_error(result: Any, exit_code: int = 1) -> str:
    """The single ``error:`` line of a failed CLI run (``exit_code``, no traceback, exactly one
    error line on stderr, where the CLI prints user errors)."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]
