"""Headless Chromium for tests, driven through the Chrome DevTools Protocol over a pipe.

Only Debian's ``chromium`` package is needed (``make browser`` installs it): no WebDriver, no
websocket library, nothing downloaded. Chromium is started with ``--remote-debugging-pipe``:
it reads CDP commands on file descriptor 3 and writes responses and events on descriptor 4, as
NUL-terminated JSON messages (the transport Puppeteer uses with ``pipe: true``).

    with Chromium.launch(tmp_path) as browser:
        page = browser.open(path.as_uri())   # waits for the load event
        page.evaluate("document.title")
        page.screenshot(out_png)             # the full page
        page.problems()                      # console errors, exceptions, network requests

Flags are those known to work in this sandbox: ``--headless --no-sandbox --disable-gpu
--disable-quic --no-first-run --disable-background-networking --disable-component-update
--disable-sync`` and a fresh ``--user-data-dir``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)
# URLs a self-contained page may load (everything else is a network request and is recorded).
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome-error:")


class BrowserError(RuntimeError):
    """Chromium did not start, answer or behave."""


def find_chromium() -> str | None:
    """Path of a Chromium binary: $CHROMIUM, else /usr/bin/chromium or one on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    """One tab, attached with a flat CDP session."""

    browser: Chromium
    session_id: str
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        return self.browser.call(method, params, session_id=self.session_id, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        reply = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in reply:
            raise BrowserError(
                f"{expression[:80]!r} threw: {_exception_text(reply['exceptionDetails'])}"
            )
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:g}s waiting for {expression!r}")
            self.browser.pump(interval)

    def screenshot(self, path: Path | str, full_page: bool = True) -> Path:
        """A PNG of the page (the whole scrollable height if ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        data = self.call("Page.captureScreenshot", params, timeout=60)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, browser log errors and non-local requests so far."""
        self.browser.pump(0)
        return [
            *(f"console error: {m}" for m in self.console_errors),
            *(f"exception: {m}" for m in self.exceptions),
            *(f"log error: {m}" for m in self.log_errors),
            *(f"network request: {u}" for u in self.requests),
        ]

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(" ".join(_remote_text(a) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(_exception_text(params.get("exceptionDetails", {})))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.log_errors.append(
                f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()
            )
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                self.requests.append(url)


class Chromium:
    """A headless Chromium process and its CDP pipe."""

    def __init__(self, pid: int, to_browser: int, from_browser: int, log: Path):
        self.pid = pid
        self._out = to_browser
        self._in = from_browser
        self.log = log
        self._buffer = b""
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._pages: dict[str, Page] = {}

    @classmethod
    @contextmanager
    def launch(
        cls, workdir: Path, executable: str | None = None, width: int = 1280, height: int = 900
    ) -> Iterator[Chromium]:
        """Start Chromium with a fresh profile under ``workdir``; stop it on exit."""
        executable = executable or find_chromium()
        if not executable:
            raise BrowserError("no Chromium found: run `make browser` (apt-get install chromium)")
        profile = Path(workdir) / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        log = Path(workdir) / "chromium.log"
        # fds 3 and 4 of the child are our pipes (dup2 clears close-on-exec on them)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        args = [
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_DUP2, to_child_r, 3),
            (os.POSIX_SPAWN_DUP2, from_child_w, 4),
        ]
        pid = os.posix_spawn(executable, args, os.environ, file_actions=actions, setpgroup=0)
        os.close(to_child_r)
        os.close(from_child_w)
        browser = cls(pid, to_child_w, from_child_r, log)
        try:
            browser.call("Browser.getVersion", timeout=60)
            yield browser
        finally:
            browser.close()

    # -- protocol -------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply (events meanwhile go to their page)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        payload = json.dumps(message).encode() + b"\0"
        try:
            while payload:
                payload = payload[os.write(self._out, payload) :]
        except OSError as exc:
            raise BrowserError(f"Chromium is gone ({exc}); see {self.log}") from None
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no reply to {method} within {timeout:g}s; see {self.log}")
            self.pump(min(remaining, 0.5))
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def pump(self, timeout: float) -> None:
        """Read whatever messages arrive within ``timeout`` seconds and dispatch them."""
        ready, _, _ = select.select([self._in], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self._in, 1 << 20)
        if not chunk:
            raise BrowserError(f"Chromium closed the pipe; see {self.log}")
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        for raw in messages:
            message = json.loads(raw)
            if "id" in message:
                self._replies[message["id"]] = message
            elif message.get("sessionId") in self._pages:
                self._pages[message["sessionId"]]._on_event(
                    message["method"], message.get("params", {})
                )

    # -- pages ----------------------------------------------------------------------------------
    def open(self, url: str, width: int = 1280, height: int = 900, timeout: float = 60) -> Page:
        """A new tab showing ``url``, once its load event has fired."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.call("Page.navigate", {"url": url})
        page.wait_for("document.readyState === 'complete'", timeout=timeout)
        return page

    def close(self) -> None:
        """Ask Chromium to quit; kill its process group if it does not within 10 s."""
        with contextlib.suppress(BrowserError):
            self.call("Browser.close", timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.killpg(self.pid, signal.SIGKILL)  # the group we started (setpgroup=0)
            os.waitpid(self.pid, 0)
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)


def _remote_text(value: dict[str, Any]) -> str:
    if "value" in value:
        return str(value["value"])
    return str(value.get("description") or value.get("type"))


def _exception_text(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    return str(exception.get("description") or details.get("text") or details)
