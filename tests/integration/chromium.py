"""Headless Chromium for the page tests, driven over the DevTools protocol.

Chromium is Debian's ``chromium`` (``apt-get install -y chromium``; another binary
can be named by ``CHROMIUM``), driven with the ``websockets`` client: no browser
is downloaded. A missing Chromium fails.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.helpers import eventually

__all__ = ["DevTools", "launch_browser"]

# As root, without network: no sandbox, and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1000,900",
]


class DevTools:
    """A minimal Chrome DevTools Protocol client bound to one page."""

    def __init__(self, websocket_url: str) -> None:
        self._ws: ClientConnection = connect(websocket_url, max_size=None, open_timeout=10)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events in between are dropped."""
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> None:
        """Until the expression is truthy; fails early if the page shows an error."""

        def true() -> Any:
            if value := self.evaluate(expression):
                return value
            if error := self.evaluate("document.getElementById('error')?.textContent"):
                # The error may have appeared since, and be what is awaited.
                if value := self.evaluate(expression):
                    return value
                raise AssertionError(f"the page shows an error: {error}")
            return None

        eventually(true, timeout_s, f"true: {expression}", 0.1)

    def type_into(self, element_id: str, text: str) -> None:
        """Focus an input and type into it as a user would."""
        self.evaluate(f"document.getElementById({element_id!r}).focus()")
        self.call("Input.insertText", text=text)

    def click(self, element_id: str) -> None:
        """A real mouse click at the middle of an element."""
        x, y = self.evaluate(
            f"(() => {{ const r = document.getElementById({element_id!r})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for event in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=event, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page."""
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self._ws.close()


def devtools_port(profile: Path, browser: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    """Chromium writes its DevTools port into the profile once it listens."""
    active = profile / "DevToolsActivePort"

    def port() -> int | None:
        if browser.poll() is not None:
            raise AssertionError(f"chromium exited with {browser.returncode}")
        return int(lines[0]) if active.exists() and (lines := active.read_text().split()) else None

    return eventually(port, timeout_s, "chromium's DevTools port", 0.1)


@contextmanager
def launch_browser(tmp_path: Path) -> Iterator[DevTools]:
    """A fresh headless Chromium (own empty profile) and its one page."""
    binary = shutil.which(os.environ.get("CHROMIUM", "chromium"))
    if binary is None:
        pytest.fail("chromium not found: install Debian's package (apt-get install -y chromium)")
    profile = tmp_path / "chromium-profile"
    log = (tmp_path / "chromium.log").open("wb")
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port = devtools_port(profile, process)
        with httpx.Client(trust_env=False) as http:
            targets = http.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(t for t in targets if t["type"] == "page")
        devtools = DevTools(page["webSocketDebuggerUrl"])
        try:
            yield devtools
        finally:
            devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
