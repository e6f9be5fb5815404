"""`userstack serve --loss --trace --pcap`: the drops are in the trace and in the capture
(pcapng comments), and `userstack ladder` counts them as lost (issue 13, item 8)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from userstack.observe.ladder import render_ladder
from userstack.wire.pcapng import Fault, fault_in, open_capture

from .helpers import STACK, Served


def test_a_lossy_echo_shows_its_drops(serve: Callable[..., Served], workdir: Path) -> None:
    served = serve("echo", "--loss", "0.1", "--seed", "3", "--trace", pcap=True)
    data = bytes(range(256)) * 400  # 100 kB
    result = subprocess.run(["nc", "-N", STACK, "7"], input=data, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()
    assert served.stop() == 0  # flushes and closes the capture
    with served.pcap.open("rb") as f:
        faults = [fault_in(comment) for _, _, comment in open_capture(f).records()]
    drops = faults.count(Fault.DROPPED)
    assert drops > 0
    trace_drops = [line for line in served.stdout.splitlines() if "fault link: dropped" in line]
    assert len(trace_drops) == drops
    ladder = render_ladder(served.pcap, workdir / "lossy.svg")
    assert len(ladder.delivery.lost) == drops == len(ladder.delivery.recorded_lost)
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: the capture's comments were read by userstack only")
    out = subprocess.run(["tshark", "-r", str(served.pcap), "-T", "fields", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert sum("dropped" in line for line in out.splitlines()) == drops
