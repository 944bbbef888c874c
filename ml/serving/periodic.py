"""A background thread that does one thing every few seconds (the champion poll, the log flush)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls ``tick`` every ``seconds`` in a daemon thread named ``name``, from :meth:`start`
    until :meth:`stop`. ``tick`` handles its own errors: one that escapes ends the thread."""

    def __init__(self, name: str, seconds: float, tick: Callable[[], None]):
        self.name = name
        self.seconds = seconds
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self.tick()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waiting up to 30 s for a running ``tick``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
