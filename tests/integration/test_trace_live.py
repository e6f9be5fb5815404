"""`serve --trace` against tcpdump on the same TUN: the same lines for the same packets."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import PATIENCE, STACK, Served, wait_until

PACKET_LINE = re.compile(r"^(?:\d\d:\d\d:\d\d\.\d{6} )?(IP .*?length \d+)")


def packet_lines(text: str) -> Counter[str]:
    """Each packet line without its timestamp and without tcpdump's payload decoding."""
    return Counter(m.group(1) for line in text.splitlines() if (m := PACKET_LINE.match(line)))


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_trace_matches_tcpdump_on_the_tun(serve: Callable[..., Served], workdir: Path) -> None:
    served = serve("http", "--port", "8080", "--trace")
    with (workdir / "dump").open("wb") as out, (workdir / "dump.err").open("wb") as err:
        tcpdump = subprocess.Popen(["tcpdump", "-i", "us0", "-nn", "-t", "-l", "-U"],
                                   stdout=out, stderr=err)
    try:
        wait_until(lambda: "listening on" in (workdir / "dump.err").read_text(), PATIENCE,
                   "tcpdump")
        for target in ("/", "/bytes/20000"):
            url = f"http://{STACK}:8080{target}"
            result = subprocess.run(["curl", "-sS", "-o", "/dev/null", url],
                                    capture_output=True, timeout=30)
            assert result.returncode == 0, result.stderr
        subprocess.run(["ping", "-c", "1", STACK], capture_output=True, timeout=10, check=True)
        wait_until(
            lambda: packet_lines((workdir / "dump").read_text()) == packet_lines(served.stdout),
            PATIENCE, "tcpdump and the trace to show the same packets",
        )
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
    trace = packet_lines(served.stdout)
    assert sum(trace.values()) > 20
    assert any("options [mss 1460,sackOK,TS val" in line for line in trace)  # the kernel's SYN
    assert any("ICMP echo reply" in line for line in trace)
