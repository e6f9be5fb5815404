"""Bulk data each way through a bad network: the stack's own FaultyLink, then the kernel's nft.

Through --loss 0.1 --dup 0.05 --reorder 0.1 (both directions), with `userstack serve`'s
default configuration: SACK (RFC 2018) lets both senders see the holes, RACK-TLP (RFC 8985)
repairs them within a round trip instead of after a 1 s RTO.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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


def test_ten_megabytes_each_way_through_loss_dup_reorder(
    serve: Callable[..., Served], workdir: Path
) -> None:
    # Measured at ~45-50 s for 10 MB each way at once (~200 kB/s each way); before SACK and
    # RACK-TLP, recovery waited for 1 s RTOs and the same run took 330 s (at first 14 min).
    # Without offload: with it, the faults act on whole super-segments (up to 44 packets
    # each), a far harsher network at the same --loss (~150 s here; test_offload_cli.py).
    serve("echo", *FAULTS, "--no-offload")
    assert echo_through(workdir, timeout=180) < 180


def test_ten_megabytes_each_way_with_nft_dropping_kernel_output(
    serve: Callable[..., Served], workdir: Path
) -> None:
    serve("echo")
    for rule in (
        "add table inet t",
        "add chain inet t out { type filter hook output priority 0; }",
        'add rule inet t out oif "us0" counter',  # every packet the kernel sends us
        'add rule inet t out oif "us0" numgen random mod 100 < 10 counter drop',
    ):
        subprocess.run(["nft", rule], check=True, timeout=10)
    echo_through(workdir, timeout=240)
    counters = subprocess.run(["nft", "list", "chain", "inet", "t", "out"], capture_output=True,
                              text=True, check=True, timeout=10).stdout
    sent, dropped = (int(part.split()[0]) for part in counters.split("packets ")[1:3])
    # The rule really dropped about 10% of the kernel's packets (with offload, most of
    # them super-segments of up to 64 KB, so there are fewer of them than of MSS packets).
    assert dropped > 10 and 0.03 < dropped / sent < 0.2
