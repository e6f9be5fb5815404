"""ECN (RFC 3168) with the kernel's own TCP, in a private namespace whose
net.ipv4.tcp_ecn is 1 (the sysctl is per namespace: the host's is not touched), both ways:
a kernel client asks and `userstack serve` (its default, `--ecn accept`) agrees, and
`userstack connect --ecn on` asks a kernel listener, which agrees. The capture shows the
ECN-setup SYN `[SEW]` and SYN,ACK `[S.E]`, and data from both ends as ECT(0). Then the
fault link marks CE both ways, and each end echoes the other's marks and answers the
echo with CWR."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from .helpers import HOST, STACK, Served, echoed
from .test_real_clients import exchange_with_kernel_listener

SYN_LINE = re.compile(r"IP (\S+)\.\d+ > (\S+)\.\d+: Flags \[(S[^\]]*)\]")


def kernel_ecn_on() -> None:
    subprocess.run(["sysctl", "-q", "-w", "net.ipv4.tcp_ecn=1"], check=True, timeout=10)
    with open("/proc/sys/net/ipv4/tcp_ecn") as f:  # this thread is in the namespace too
        assert f.read().strip() == "1"


def syns(pcap: Path) -> list[tuple[str, str, str]]:
    """(source, destination, flags) of each SYN and SYN,ACK in the capture."""
    out = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return [m.groups() for m in SYN_LINE.finditer(out)]


def ect_sources(pcap: Path) -> set[str]:
    """The sources of TCP packets with data marked ECT(0) (tcpdump -v: "tos 0x2,ECT(0)")."""
    out = subprocess.run(["tcpdump", "-nn", "-v", "-r", str(pcap), "tcp"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    found = set()
    for header, body in zip(out.splitlines()[::2], out.splitlines()[1::2], strict=False):
        if "ECT(0)" in header and "length 0" not in body:
            found.add(body.split()[0].rsplit(".", 1)[0])
    return found


def test_kernel_client_asks_and_userstack_agrees(serve: Callable[..., Served]) -> None:
    kernel_ecn_on()
    served = serve("echo", pcap=True)
    assert echoed(STACK, b"e" * 100_000) == b"e" * 100_000
    assert served.stop() == 0
    assert syns(served.pcap) == [(HOST, STACK, "SEW"), (STACK, HOST, "S.E")]
    assert ect_sources(served.pcap) == {HOST, STACK}  # data both ways, ECT(0)


def test_userstack_asks_and_a_kernel_listener_agrees(workdir: Path, netns: object) -> None:
    kernel_ecn_on()
    pcap = workdir / "connect.pcap"
    exchange_with_kernel_listener(workdir, HOST, "--ecn", "on", "--pcap", str(pcap))
    assert syns(pcap) == [(STACK, HOST, "SEW"), (HOST, STACK, "S.E")]
    assert ect_sources(pcap) == {HOST, STACK}


def flags_from(pcap: Path, source: str) -> list[str]:
    """The TCP flags of every segment `source` sent, in the capture's order."""
    out = subprocess.run(["tcpdump", "-nn", "-r", str(pcap), "src", source], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return re.findall(r"Flags \[([^\]]*)\]", out)


def test_ce_marks_are_echoed_and_answered_both_ways(serve: Callable[..., Served]) -> None:
    """The fault link marks CE (`--ce`, seeded) on packets both ways: the kernel echoes
    our marked data with ECE and userstack answers with CWR; userstack echoes the kernel's
    marked data and the kernel answers with CWR. (The capture is taken where packets enter
    the faults: the marks themselves are not in it, their echoes are.)"""
    kernel_ecn_on()
    served = serve("echo", "--ce", "0.1", "--seed", "5", pcap=True)
    data = bytes(range(256)) * 8192  # 2 MiB
    with socket.create_connection((STACK, 7), timeout=30) as sock:

        def send() -> None:  # while the echo comes back, or both ends stall
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        got = b""
        while chunk := sock.recv(1 << 16):
            got += chunk
        sender.join(timeout=30)
    assert got == data
    assert served.stop() == 0
    ours, theirs = flags_from(served.pcap, STACK), flags_from(served.pcap, HOST)
    assert ours[0] == "S.E" and theirs[0] == "SEW"
    assert any("E" in f for f in ours[1:]) and any("W" in f for f in theirs[1:])
    assert any("E" in f for f in theirs[1:]) and any("W" in f for f in ours[1:])
