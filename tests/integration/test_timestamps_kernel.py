"""RFC 7323 timestamps with the kernel's own TCP, in a private namespace, both ways: a kernel
client (curl) to `userstack serve`, and `userstack connect` to a kernel listener. tcpdump
shows `TS val X ecr Y` in both SYNs; then the stack's own capture of the transfers (10 MB
each way to the server, sha256-checked) is read segment by segment: every segment carries
a TSopt, each side's TSval never goes back, and every TSecr is a TSval the other side
really sent, never going back either."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from userstack.observe.replay import read_capture
from userstack.tcp.timestamps import ts_before
from userstack.wire.addr import Endpoint
from userstack.wire.tcp import TcpFlags

from .helpers import HOST, STACK, Served, echoed
from .test_real_clients import (
    TEN_MB,
    curl,
    exchange_with_kernel_listener,
    pattern_sha256,
    random_file,
)

SYN_TS = re.compile(r"IP (\S+)\.\d+ > (\S+)\.\d+: Flags \[S\.?\].*TS val (\d+) ecr (\d+)")


def syn_timestamps(pcap: Path) -> list[tuple[str, str, int, int]]:
    """(source, destination, TSval, TSecr) of each SYN and SYN,ACK, as tcpdump reads them."""
    out = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return [(src, dst, int(val), int(ecr)) for src, dst, val, ecr in SYN_TS.findall(out)]


def check_echoes(pcap: Path) -> int:
    """RFC 7323 3.2 and 4.3 through each connection of the capture (taken at the stack, so
    in the order it sent and received): returns how many segments were checked."""
    sent: dict[tuple[Endpoint, Endpoint], set[int]] = defaultdict(set)  # TSvals per direction
    last: dict[tuple[Endpoint, Endpoint], tuple[int, int | None]] = {}  # (TSval, TSecr)
    checked = 0
    for p in read_capture(pcap).segments:
        seg, way = p.segment, (p.src, p.dst)
        if seg.flags & TcpFlags.RST:
            continue
        assert seg.options.timestamps is not None, f"#{p.number} has no TSopt"
        tsval, tsecr = seg.options.timestamps
        if way in last:
            old_val, old_ecr = last[way]
            assert not ts_before(tsval, old_val), f"#{p.number}: TSval went back"
            assert old_ecr is None or not ts_before(tsecr, old_ecr), f"#{p.number}: TSecr back"
        if seg.flags & TcpFlags.ACK:
            assert tsecr in sent[(p.dst, p.src)], f"#{p.number}: TSecr {tsecr} never sent"
        else:
            assert tsecr == 0  # a SYN: no ACK, TSecr 0 (RFC 7323 3.2)
        sent[way].add(tsval)
        last[way] = (tsval, tsecr if seg.flags & TcpFlags.ACK else None)
        checked += 1
    return checked


def test_a_kernel_client_agrees_and_every_echo_is_right(
    serve: Callable[..., Served], workdir: Path
) -> None:
    served = serve("http", "--port", "8080", pcap=True)
    digest = random_file(workdir / "upload", TEN_MB)
    up = curl("--data-binary", f"@{workdir / 'upload'}", f"http://{STACK}:8080/upload")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout) == {"length": TEN_MB, "sha256": digest}
    down = curl(f"http://{STACK}:8080/bytes/{TEN_MB}")
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(down.stdout).hexdigest() == pattern_sha256(TEN_MB)
    assert served.stop() == 0
    syns = syn_timestamps(served.pcap)
    assert [(src, dst) for src, dst, _, _ in syns] == [(HOST, STACK), (STACK, HOST)] * 2
    for (_, _, val, ecr), (_, _, val2, ecr2) in zip(syns[::2], syns[1::2], strict=True):
        assert ecr == 0 and ecr2 == val and val2 != 0  # the SYN,ACK echoes the SYN
    assert check_echoes(served.pcap) > 300  # (super-segments: fewer, larger records)


def test_userstack_offers_them_to_a_kernel_listener(workdir: Path, netns: object) -> None:
    pcap = workdir / "connect.pcap"
    exchange_with_kernel_listener(workdir, HOST, "--pcap", str(pcap))
    [(src, dst, val, ecr), (src2, dst2, val2, ecr2)] = syn_timestamps(pcap)
    assert (src, dst, ecr) == (STACK, HOST, 0) and (src2, dst2, ecr2) == (HOST, STACK, val)
    assert val2 != 0
    assert check_echoes(pcap) > 100


SYN_LINE = re.compile(r"IP (\S+)\.\d+ > (\S+)\.\d+: Flags \[(S\.?)\].*options \[([^\]]*)\]")


def syn_options(pcap: Path) -> list[tuple[str, str, str, str]]:
    """(source, destination, flags, options as tcpdump writes them) of each SYN, SYN,ACK."""
    out = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return SYN_LINE.findall(out)


def without_tsopt(pcap: Path, *, skip: int = 0) -> int:
    """How many segments the capture holds after the first `skip`; it fails if one of
    them carries a TSopt."""
    segments = read_capture(pcap).segments[skip:]
    for p in segments:
        assert p.segment.options.timestamps is None, f"#{p.number} carries a TSopt"
    return len(segments)


def test_serve_no_timestamps_answers_a_kernel_syn_without_them(
    serve: Callable[..., Served],
) -> None:
    """`serve --no-timestamps` (Linux's tcp_timestamps=0 for the stack): the kernel's SYN
    offers TSopt, the SYN,ACK carries none, and so no segment after it does (RFC 7323
    3.2: both SYNs must carry it); the data gets through."""
    served = serve("echo", "--no-timestamps", pcap=True)
    assert echoed(STACK, b"t" * 100_000) == b"t" * 100_000
    assert served.stop() == 0
    [(src, dst, flags, options), (src2, dst2, flags2, options2)] = syn_options(served.pcap)
    assert (src, dst, flags, src2, dst2, flags2) == (HOST, STACK, "S", STACK, HOST, "S.")
    assert "TS val" in options and "TS val" not in options2, (options, options2)
    assert options2.startswith("mss ") and "sackOK" in options2  # the others, as before
    assert without_tsopt(served.pcap, skip=1) > 10  # all but the kernel's SYN


def test_connect_no_timestamps_offers_none_to_a_kernel_listener(
    workdir: Path, netns: object
) -> None:
    pcap = workdir / "connect.pcap"
    exchange_with_kernel_listener(workdir, HOST, "--no-timestamps", "--pcap", str(pcap))
    [(src, _, flags, options), (src2, _, flags2, options2)] = syn_options(pcap)
    assert (src, flags, src2, flags2) == (STACK, "S", HOST, "S.")
    assert "TS val" not in options and "TS val" not in options2, (options, options2)
    assert without_tsopt(pcap) > 100
