"""Helpers for running `userstack` as a real process inside a test's private namespace.

Each netns test gets a fresh namespace, so every test can use the default TUN name (us0)
and addresses (10.0.0.2 behind 10.0.0.1/24). Processes are started with subprocess,
which forks inside the namespace (see tests/netns.py).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

READY = "userstack: serving"
STACK, HOST = "10.0.0.2", "10.0.0.1"


def userstack_argv(*argv: str) -> list[str]:
    """The command as the installed `userstack` script runs it (userstack.__main__)."""
    return [sys.executable, "-m", "userstack", *argv]


# How long to wait for what happens within milliseconds on an idle machine. On a loaded
# 2-core one a single `userstack ss` poll can take seconds; a wait this long only costs its
# whole length when the test fails anyway.
PATIENCE = 30.0


def echoed(host: str, data: bytes, timeout: float = 10) -> bytes:
    """What `serve echo` sends back to a kernel socket that sends `data` and half-closes."""
    with socket.create_connection((host, 7), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return got


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Served:
    """A running `userstack serve`."""

    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def control(self) -> Path:
        return self.workdir / "ctl.sock"

    @property
    def pcap(self) -> Path:
        return self.workdir / "capture.pcap"

    @property
    def stderr(self) -> str:
        return (self.workdir / "stderr").read_text()

    @property
    def stdout(self) -> str:
        return (self.workdir / "stdout").read_text()

    def ss(self, *flags: str) -> str:
        result = subprocess.run(
            userstack_argv("ss", *flags, "--control", str(self.control)),
            capture_output=True, text=True, timeout=30, check=True,
        )
        return result.stdout

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C would be; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"userstack serve ignored SIGTERM; stderr:\n{self.stderr}")
