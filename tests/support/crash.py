"""Crash injection inside ``ml``'s warehouse writes (in process): a DuckDB connection that fails
when one of its write transactions commits, after all its statements ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml.platform.runtime import Runtime


class _FailingCommit:
    def __init__(self, con: Any, at: int):
        self._con, self._at, self.commits = con, at, 0

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.strip().lower() == "commit":
            self.commits += 1
            if self.commits == self._at:
                raise RuntimeError("simulated crash before commit")
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@contextmanager
def failing_commit(at: int = 1) -> Iterator[None]:
    """Within the block, the ``at``-th commit of each warehouse ``ml`` opens raises
    ``RuntimeError("simulated crash before commit")``; the warehouse is healthy again after it."""
    real = Runtime.warehouse

    @contextmanager
    def crashing(rt: Runtime, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(rt, *args, **kwargs) as wh:
            wh.con = _FailingCommit(wh.con, at)
            yield wh

    Runtime.warehouse = crashing  # type: ignore[method-assign]
    try:
        yield
    finally:
        Runtime.warehouse = real  # type: ignore[method-assign]
