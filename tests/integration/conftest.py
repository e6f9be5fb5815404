"""Fixtures for the integration tests: a short work directory and `userstack serve` processes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import PATIENCE, READY, Served, userstack_argv, wait_until


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short private directory (a Unix socket path must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="us-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(netns: object, workdir: Path) -> Iterator[Callable[..., Served]]:
    """`serve("http", "--port", "8080", ...)` starts `userstack serve` and waits until ready."""
    started: list[Served] = []

    def start(app: str, *flags: str, pcap: bool = False) -> Served:
        served = Served(None, workdir)  # type: ignore[arg-type]
        argv = ["serve", app, "--control", str(served.control), *flags]
        if pcap:
            argv += ["--pcap", str(served.pcap)]
        with (workdir / "stdout").open("wb") as out, (workdir / "stderr").open("wb") as err:
            served.proc = subprocess.Popen(userstack_argv(*argv), stdout=out, stderr=err,
                                           stdin=subprocess.DEVNULL)
        started.append(served)

        def ready() -> bool:
            if served.proc.poll() is not None:
                pytest.fail(f"userstack serve exited {served.proc.returncode}:\n{served.stderr}")
            return READY in served.stderr

        wait_until(ready, PATIENCE, "the ready line")
        return served

    yield start
    for served in started:
        served.stop()
