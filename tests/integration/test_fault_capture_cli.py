"""`userstack serve --loss --trace --pcap`: the drops are in the trace and in the capture
(pcapng comments), and `userstack ladder` counts them as lost (issue 13, item 8); over
IPv6 too, where tcpdump decodes the capture as IPv6."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from userstack.cli import main
from userstack.observe.ladder import render_ladder
from userstack.wire import IPPROTO_TCP
from userstack.wire.pcapng import Fault, fault_in, open_capture

from .helpers import STACK, Served
from .test_real_clients import curl, pattern_sha256
from .test_real_clients_ipv6 import DUAL, HOST6, STACK6


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


def test_a_lossy_ipv6_download_decodes_in_tcpdump_with_its_drops(
    serve: Callable[..., Served], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --addr6 ... --loss --pcap` and curl -6 in the test's namespace: the capture's
    IPv6 packets are raw IP to tcpdump (IP6, our addresses and ports, not IPv4 garbage),
    and `userstack ladder` and `view` count the drops the comments record."""
    # without offload every segment is a packet the faults may drop: some 200 in all
    served = serve("http", *DUAL, "--port", "8080", "--loss", "0.05", "--seed", "3",
                   "--no-offload", pcap=True)
    size = 150_000
    body = workdir / "body"
    result = curl("-6", "-o", str(body), f"http://[{STACK6}]:8080/bytes/{size}")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(body.read_bytes()).hexdigest() == pattern_sha256(size)
    assert served.stop() == 0  # flushes and closes the capture
    with served.pcap.open("rb") as f:
        records = list(open_capture(f).records())
    tcp6 = [(p, c) for _, p, c in records if p[0] >> 4 == 6 and p[6] == IPPROTO_TCP]
    drops = sum(fault_in(c) is Fault.DROPPED for _, c in tcp6)
    assert drops > 0
    dump = subprocess.run(["tcpdump", "-r", str(served.pcap), "-nn", "ip6 and tcp"],
                          capture_output=True, text=True, timeout=30, check=True)
    assert "link-type RAW (Raw IP)" in dump.stderr
    lines = dump.stdout.splitlines()
    ours = re.compile(rf" IP6 ({HOST6}\.\d+ > {STACK6}\.8080|{STACK6}\.8080 > {HOST6}\.\d+): ")
    assert len(lines) == len(tcp6) and all(ours.search(line) for line in lines), lines[:3]
    assert main(["ladder", str(served.pcap), "-o", str(workdir / "lossy6.svg")]) == 0
    assert f"[{STACK6}]:8080" in capsys.readouterr().out
    ladder = render_ladder(served.pcap, workdir / "lossy6.svg")
    assert len(ladder.delivery.recorded_lost) == drops
    assert main(["view", str(served.pcap), "-o", str(workdir / "lossy6.html")]) == 0
    assert (workdir / "lossy6.html").read_text().count('"fault": "dropped"') == drops
