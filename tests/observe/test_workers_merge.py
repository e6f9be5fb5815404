"""The sans-I/O halves of `serve --queues N`'s one view of the host: the trace merge, the
capture merge (pcap parts -> one pcapng), and the pcapng codec, checked against dpkt."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

import dpkt
import trio

from userstack.wire.icmp import IcmpEcho, IcmpType
from userstack.wire.packet import build_icmp_packet
from userstack.wire.pcap import PcapWriter
from userstack.wire.pcapng import PcapngReader, PcapngWriter
from userstack.workers import SharedClock, TraceMerge, merge_captures


def echo(sequence: int, data: bytes = b"") -> bytes:
    return build_icmp_packet(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"),
                             IcmpEcho(IcmpType.ECHO_REQUEST, 7, sequence, data))


def test_trace_lines_come_out_in_stamp_order_tagged_with_their_queue() -> None:
    merge = TraceMerge()
    merge.add(1, "12:00:00.000300 IP b\n")
    merge.add(0, "12:00:00.000100 IP a\n")  # earlier, but its pipe was slower
    merge.add(0, "12:00:01.500000 IP c\n")
    assert merge.ready(12 * 3600 + 1.0) == ["12:00:00.000100 q0 IP a\n",
                                            "12:00:00.000300 q1 IP b\n"]
    assert merge.ready(12 * 3600 + 1.0) == []  # handed out once
    assert merge.ready(math.inf) == ["12:00:01.500000 q0 IP c\n"]


def test_a_line_without_a_stamp_stays_under_its_own_queues_line() -> None:
    merge = TraceMerge()
    merge.add(0, "12:00:00.000100 IP a\n")
    merge.add(1, "12:00:00.000100 IP b\n")  # the same stamp, from the other queue
    merge.add(0, "    why a\n")  # a --why line under a, arriving after b
    merge.add(1, "12:00:00.000200 IP c\n")
    assert merge.ready(math.inf) == ["12:00:00.000100 q0 IP a\n", "    why a\n",
                                     "12:00:00.000100 q1 IP b\n", "12:00:00.000200 q1 IP c\n"]
    merge.add(1, "    why c, after c went out\n")
    assert merge.ready(math.inf) == ["    why c, after c went out\n"]


def test_pcapng_round_trips_and_dpkt_reads_the_same_packets() -> None:
    packets = [(0, 1_700_000_000.000001, echo(1)), (1, 1_700_000_000.5, echo(2, b"abc")),
               (0, 1_700_000_001.25, echo(3, b"odd length!"))]
    buf = io.BytesIO()
    writer = PcapngWriter(buf, "us0", queues=2)
    for queue, t, packet in packets:
        writer.write(packet, t, queue=queue)
    buf.seek(0)
    reader = PcapngReader(buf)
    assert [(r.queue, round(r.timestamp, 6), r.data) for r in reader.packets()] == packets
    assert reader.interfaces == ["us0"]
    buf.seek(0)
    assert [(round(t, 6), bytes(p)) for t, p in dpkt.pcapng.Reader(buf)] == [
        (t, p) for _, t, p in packets]


def test_captures_merge_in_time_order_each_packet_naming_its_queue(tmp_path: Path) -> None:
    parts = []
    for queue, times in ((0, [1.0, 3.0, 4.0]), (1, [2.0, 5.0])):
        path = tmp_path / f"part{queue}"
        with path.open("wb") as f:
            writer = PcapWriter(f)
            for t in times:
                writer.write(echo(int(t)), 1_700_000_000 + t)
        parts.append((queue, path))
    out = tmp_path / "all.pcapng"
    merge_captures(parts, "us0", 2, out)
    with out.open("rb") as f:
        records = list(PcapngReader(f).packets())
    assert [(r.interface, r.queue, r.timestamp - 1_700_000_000) for r in records] == [
        (0, 0, 1.0), (0, 1, 2.0), (0, 0, 3.0), (0, 0, 4.0), (0, 1, 5.0)]
    assert [r.data for r in records] == [echo(s) for s in (1, 2, 3, 4, 5)]
    assert not any(path.exists() for _, path in parts)  # the parts are gone


def test_the_workers_clock_is_the_same_in_every_process() -> None:
    """SharedClock is CLOCK_MONOTONIC without trio's random offset: two processes agree on
    `now`, so an ISN or a SYN cookie made by one worker is judged by the same clock in another."""
    code = "from userstack.workers import SharedClock; print(SharedClock().current_time())"
    before = time.monotonic()
    theirs = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  timeout=60, check=True).stdout)
    assert before <= theirs <= time.monotonic()

    async def now() -> float:
        return trio.current_time()

    ours = trio.run(now, clock=SharedClock())
    assert theirs <= ours <= time.monotonic()
