"""`userstack serve --offload / --no-offload` over a real TUN, in a private namespace.

curl uploads to the http service; the sha256 the service reports must match, and the pcap
must show what crossed the TUN as tcpdump shows a TSO interface: with offload, records
longer than the MTU (the kernel's super-segments), each with a checksum tcpdump calls
correct; without, none longer than the MTU. Over IPv6 too (TSO6), both ways.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import STACK, Served
from .test_faults import echo_through
from .test_real_clients import curl, pattern_sha256, random_file
from .test_real_clients_ipv6 import DUAL, STACK6

SIZE = 3_000_000


def _upload(served: Served, workdir: Path) -> None:
    digest = random_file(workdir / "upload", SIZE)
    result = curl("--data-binary", f"@{workdir / 'upload'}", f"http://{STACK}:8080/upload")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"length": SIZE, "sha256": digest}
    assert served.stop() == 0


def _pcap_lengths(served: Served) -> tuple[list[int], str]:
    out = subprocess.run(["tcpdump", "-nn", "-vv", "-r", str(served.pcap)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    lengths = [int(n) for n in re.findall(r"proto TCP \(6\), length (\d+)\)", out)]
    return lengths, out


@pytest.mark.parametrize("flag", ["--offload", "--no-offload"])
def test_serve_upload_with_and_without_offload(
    serve: Callable[..., Served], workdir: Path, flag: str
) -> None:
    served = serve("http", "--port", "8080", "--trace", flag, pcap=True)
    _upload(served, workdir)
    lengths, out = _pcap_lengths(served)
    assert lengths and "incorrect" not in out
    if flag == "--offload":
        assert max(lengths) > 1500  # super-segments, one record each
        assert "(offloaded: super-segment)" in served.stdout
        assert "offload refused" not in served.stderr
    else:
        assert max(lengths) <= 1500
        assert "offloaded" not in served.stdout


def test_serve_offload_through_faults(serve: Callable[..., Served], workdir: Path) -> None:
    """Loss, duplication and reordering of whole super-segments, both ways: still exact."""
    serve("echo", "--offload", "--loss", "0.03", "--dup", "0.01", "--reorder", "0.03",
          "--seed", "5")
    assert echo_through(workdir, timeout=120, size=SIZE) < 120


def test_tso6_both_ways_with_a_kernel_ipv6_client(
    serve: Callable[..., Served], workdir: Path
) -> None:
    """curl -6 uploads (the kernel's TCPV6 super-segments come up whole) and downloads
    (ours go down as TCPV6 super-segments for the kernel to cut), sha256-checked."""
    served = serve("http", *DUAL, "--port", "8080", "--trace", "--offload", pcap=True)
    digest = random_file(workdir / "upload", SIZE)
    result = curl("-6", "--data-binary", f"@{workdir / 'upload'}", f"http://[{STACK6}]:8080/upload")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"length": SIZE, "sha256": digest}
    body = workdir / "body"
    result = curl("-6", "-o", str(body), f"http://[{STACK6}]:8080/bytes/{SIZE}")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(body.read_bytes()).hexdigest() == pattern_sha256(SIZE)
    assert served.stop() == 0
    assert re.search(r"IP6 .*\(offloaded: super-segment\)", served.stdout)  # in, whole
    # out, cut at the MSS: 1500 - 60, less the 12 bytes of timestamps
    assert re.search(r"IP6 .*\(offloaded: TSO, gso_size 1428\)", served.stdout)
    out = subprocess.run(["tcpdump", "-nn", "-vv", "-r", str(served.pcap), "ip6"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lengths = [int(n) for n in re.findall(r"next-header TCP \(6\) payload length: (\d+)\)", out)]
    assert lengths and max(lengths) > 1500 and "incorrect" not in out
