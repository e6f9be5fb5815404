"""Bulk data each way through a bad network: the stack's own FaultyLink, then the kernel's nft.

Through --loss 0.1 --dup 0.05 --reorder 0.1 (both directions) the stack's sending side is
RTO-bound (see the soak test's note), so the regular suite moves 100 kB each way there and
the full 10 MB runs as a soak.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import STACK, Served
from .test_real_clients import TEN_MB, random_file

FAULTS = ("--loss", "0.1", "--dup", "0.05", "--reorder", "0.1", "--seed", "7")


def echo_through(workdir: Path, timeout: float, size: int = TEN_MB) -> float:
    """nc -N sends `size` bytes to echo and reads them back; asserts the hash; returns seconds."""
    digest = random_file(workdir / "upload", size)
    start = time.monotonic()
    with (workdir / "upload").open("rb") as stdin, (workdir / "echoed").open("wb") as stdout:
        result = subprocess.run(["nc", "-N", STACK, "7"], stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    echoed = (workdir / "echoed").read_bytes()
    assert len(echoed) == size
    assert hashlib.sha256(echoed).hexdigest() == digest
    return elapsed


def test_bulk_each_way_through_loss_dup_reorder(
    serve: Callable[..., Served], workdir: Path
) -> None:
    serve("echo", *FAULTS)
    echo_through(workdir, timeout=120, size=100_000)


@pytest.mark.soak
def test_ten_megabytes_each_way_through_loss_dup_reorder(
    serve: Callable[..., Served], workdir: Path
) -> None:
    # Measured at ~12 kB/s each way: with 10% loss both ways the stack's cwnd stays small,
    # three duplicate ACKs rarely arrive, and recovery waits for 1 s RTOs (no SACK offered).
    serve("echo", *FAULTS)
    echo_through(workdir, timeout=3600)


def test_ten_megabytes_each_way_with_nft_dropping_kernel_output(
    serve: Callable[..., Served], workdir: Path
) -> None:
    serve("echo")
    for rule in (
        "add table inet t",
        "add chain inet t out { type filter hook output priority 0; }",
        'add rule inet t out oif "us0" numgen random mod 100 < 10 counter drop',
    ):
        subprocess.run(["nft", rule], check=True, timeout=10)
    echo_through(workdir, timeout=240)
    counters = subprocess.run(["nft", "list", "chain", "inet", "t", "out"], capture_output=True,
                              text=True, check=True, timeout=10).stdout
    dropped = int(counters.split("packets ")[1].split()[0])
    assert dropped > 100  # the rule really dropped (about 10% of the kernel's packets)
