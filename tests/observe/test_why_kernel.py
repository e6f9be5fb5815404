"""`userstack explain` on the kernel's own capture of a kernel-to-kernel connection (tcpdump
on `lo` in a private namespace), IPv4 and IPv6, as tcpdump writes it (pcap, Ethernet
frames) and as Wireshark's editcap turns it into pcapng, with and without ECN: every
segment gets at least one decision of a core."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from userstack.observe.replay import read_capture
from userstack.observe.why import explain_capture
from userstack.wire.tcp import TcpFlags

PORT = 7117
REQUEST = b"why does TCP do that?\n" * 100  # a few segments' worth each way


def _exchange(host: str) -> None:
    """A kernel client and a kernel server: request, echo, the client closes first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, PORT), family=family) as listener:
        client = socket.create_connection((host, PORT), timeout=10)
        server, _ = listener.accept()
        with client, server:
            client.sendall(REQUEST)
            client.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := server.recv(65536):
                received += chunk
            server.sendall(received)
            server.shutdown(socket.SHUT_WR)
            echoed = b""
            while chunk := client.recv(65536):
                echoed += chunk
    assert echoed == REQUEST


def _closed_both_ways(pcap: Path) -> bool:
    """The capture holds both FINs and, last, the ACK of the second one."""
    if not pcap.exists():
        return False
    segments = [p.segment for p in read_capture(pcap).segments]
    fins = [s for s in segments if s.flags & TcpFlags.FIN]
    if len({s.src_port for s in fins}) < 2 or not segments:
        return False
    last_fin, last = fins[-1], segments[-1]
    return last.src_port != last_fin.src_port and last.ack == last_fin.seq + last_fin.seg_len


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
@pytest.mark.parametrize(("host", "pcapng", "ecn"), [
    ("127.0.0.1", False, False), ("::1", False, False), ("127.0.0.1", True, False),
    ("::1", True, False), ("127.0.0.1", False, True), ("::1", False, True),
], ids=["ipv4-pcap", "ipv6-pcap", "ipv4-pcapng", "ipv6-pcapng", "ipv4-ecn", "ipv6-ecn"])
def test_every_segment_of_a_kernel_capture_gets_a_decision(
    netns: object, tmp_path: Path, host: str, pcapng: bool, ecn: bool
) -> None:
    """With `ecn` the kernel asks for ECN (tcp_ecn=1, in this namespace only): [SEW], [S.E]."""
    if pcapng and shutil.which("editcap") is None:
        pytest.skip("editcap (Wireshark's) not installed: the pcap case reads the same capture")
    if ecn:
        subprocess.run(["sysctl", "-q", "-w", "net.ipv4.tcp_ecn=1"], check=True, timeout=10)
    pcap, err = tmp_path / "kernel.pcap", tmp_path / "tcpdump.err"
    with err.open("wb") as errors:
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-U", "-w", str(pcap), f"tcp port {PORT}"],
            stdout=subprocess.DEVNULL, stderr=errors,
        )
    try:
        deadline = time.monotonic() + 10
        while "listening on" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.02)
        _exchange(host)
        deadline = time.monotonic() + 10
        while not _closed_both_ways(pcap):  # tcpdump -U writes each packet as it sees it
            assert time.monotonic() < deadline, "tcpdump did not write the whole close"
            time.sleep(0.02)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
    if pcapng:
        converted = tmp_path / "kernel.pcapng"
        subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(converted)], check=True,
                       capture_output=True, timeout=30)
        assert converted.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a Section Header Block
        pcap = converted
    (explanation,) = explain_capture(pcap)
    assert explanation.conversation.client.ip.version == (6 if ":" in host else 4)
    assert len(explanation.conversation.segments) >= 10
    assert explanation.undecided() == []
    assert explanation.replay.notes == []
    text = "\n".join(explanation.lines)
    assert "server  listen.syn  RFC 9293 3.10.7.2" in text
    assert "client  syn_sent.established  RFC 9293 3.10.7.3" in text
    assert ("Flags [SEW]" in text) == ecn and ("ecn.setup" in text) == ecn
