"""A headless Chromium driven over the Chrome DevTools Protocol on a pipe (no port, no
download): Debian's `chromium`, started with --remote-debugging-pipe, reads commands as
NUL-terminated JSON on its fd 3 and answers on its fd 4.

Only for tests, and only inside a private network namespace (the `netns` fixture): the
page under test must work with no network at all, and Chromium must not reach one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--remote-debugging-pipe",
)


_ON_FDS_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_or_skip() -> str:
    """The browser, or skip the test (fail it in CI, where scripts/test installs one)."""
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: scripts/test installs it (ensure_debian_tools)")
        pytest.skip("no chromium (scripts/test installs it as root)")
    return binary


class CdpError(RuntimeError):
    pass


class Chromium:
    """One browser and one page in it; every call waits at most `timeout` seconds."""

    def __init__(self, binary: str, profile: Path, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.log = profile.with_name(profile.name + ".log")  # Chromium's own complaints
        log = self.log.open("wb")
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()

        # a trampoline puts the pipe ends on fds 3 and 4, where Chromium expects them
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ON_FDS_3_AND_4, str(commands_r), str(answers_w), binary,
             *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            pass_fds=(commands_r, answers_w),
        )
        os.close(commands_r)
        os.close(answers_w)
        log.close()
        self._next_id = 0
        self._buffer = b""
        self._session: str | None = None

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True
             ) -> dict[str, Any]:
        """Send one command (to the page's session unless page=False); return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise CdpError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("Chromium did not answer in time")
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise CdpError(f"Chromium closed the pipe; it said: {tail}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int = 1600, height: int = 1000) -> None:
        """A new page at `url`, attached, loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.call("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, page=False)
        self._session = attached["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise CdpError(f"{url} did not load")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real left click at (x, y) in the viewport, as a user's mouse makes it."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):  # it may be gone already
            self.call("Browser.close", page=False)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        os.close(self._commands)
        os.close(self._answers)
