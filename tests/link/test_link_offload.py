"""Offloaded packets through the memory link, the fault link and the pcap tap (no root).

A memory pair with `offload=True` behaves like a TUN with TSO: the far end receives a
super-segment whole (as `SuperSegment`, checksum vouched for) or, with `whole=False`, as
the MSS-sized packets the kernel's GSO makes. Faults act on the whole super-segment.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address

import dpkt
import pytest
import trio

from userstack.link.faults import FaultyLink
from userstack.link.memory import memory_link_pair
from userstack.link.pcap_tap import PcapTap
from userstack.wire import SeqNum, TcpFlags, TcpSegment
from userstack.wire.offload import (
    NO_OFFLOAD,
    TSO,
    OffloadedPacket,
    PartialChecksum,
    SuperSegment,
    Vouched,
    completed,
)
from userstack.wire.pcap import PcapReader, PcapWriter

A, B = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")
MSS = 1448
SEG = TcpSegment(5000, 80, SeqNum(1), SeqNum(1), TcpFlags.ACK | TcpFlags.PSH, 512,
                 payload=bytes(i % 253 for i in range(45 * MSS)))
SUPER = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS)
SINGLE = OffloadedPacket.from_segment(A, B, replace(SEG, payload=b"one packet"))


def checked_by_dpkt(packet: bytes) -> dpkt.ip.IP:
    ip = dpkt.ip.IP(packet)
    sums = (ip.sum, ip.data.sum)
    ip.sum = ip.data.sum = 0
    again = dpkt.ip.IP(bytes(ip))
    assert (again.sum, again.data.sum) == sums
    return again


def test_capabilities() -> None:
    plain, offloaded = memory_link_pair(), memory_link_pair(offload=True)
    assert [end.offload for end in plain] == [NO_OFFLOAD, NO_OFFLOAD]
    assert [end.offload for end in offloaded] == [TSO, TSO]
    assert FaultyLink(offloaded[0]).offload == TSO
    assert PcapTap(offloaded[0], PcapWriter(io.BytesIO())).offload == TSO


async def test_super_segment_arrives_whole_and_vouched() -> None:
    a, b = memory_link_pair(offload=True)
    await a.send_batch([SUPER, SINGLE, b"\x45plain"])
    got = await b.receive_batch()
    assert [type(p) for p in got] == [SuperSegment, PartialChecksum, bytes]
    assert completed(got[0]) == SUPER.complete()
    assert completed(got[1]) == SINGLE.complete()
    assert got[2] == b"\x45plain"


async def test_super_segment_cut_for_a_peer_that_takes_none() -> None:
    a, b = memory_link_pair(offload=True, whole=False)
    await a.send_batch([SUPER, SINGLE])
    got = await b.receive_batch()
    assert got == [*SUPER.segments(), SINGLE.complete()]
    assert len(got) == 46 and not any(isinstance(p, Vouched) for p in got)
    assert b"".join(checked_by_dpkt(p).data.data for p in got[:45]) == SEG.payload


async def test_loss_takes_the_whole_super_segment() -> None:
    a, b = memory_link_pair(offload=True, loss=1.0, seed=1)
    await a.send(SUPER)
    assert (a.send_counters.offered, a.send_counters.dropped) == (1, 1)
    with trio.move_on_after(0.01):
        await b.receive()
        pytest.fail("a lost super-segment arrived")


async def test_duplication_copies_the_whole_super_segment() -> None:
    a, b = memory_link_pair(offload=True, duplicate=1.0, seed=1)
    await a.send(SUPER)
    got = await b.receive_batch()
    assert [completed(p) for p in got] == [SUPER.complete()] * 2


async def test_corruption_reaches_the_receiver_unvouched() -> None:
    a, b = memory_link_pair(offload=True, corrupt=1.0, seed=1)
    await a.send(SUPER)
    [got] = await b.receive_batch()
    assert type(got) is bytes  # the receiver verifies it, and its checksum fails
    good = SUPER.complete()
    assert len(got) == len(good)
    diff = [i for i in range(len(good)) if got[i] != good[i]]
    assert len(diff) == 1 and bin(got[diff[0]] ^ good[diff[0]]).count("1") == 1


async def test_reordering_moves_the_whole_super_segment() -> None:
    async with trio.open_nursery() as nursery:
        a, b = memory_link_pair(offload=True)
        link = FaultyLink(a, reorder=1.0, seed=3, nursery=nursery)
        await link.send(SUPER)
        await link.send(SINGLE)
        got = []
        while len(got) < 2:
            got += await b.receive_batch()
        assert [type(p) for p in got] == [PartialChecksum, SuperSegment]
        await link.aclose()


async def test_pcap_records_offloaded_packets_with_correct_checksums(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = memory_link_pair(offload=True)
    path = tmp_path / "offload.pcap"
    with path.open("wb") as file:
        async with PcapTap(a, PcapWriter(file)) as tap:
            await tap.send_batch([SUPER, SINGLE])
            await b.send_batch([SUPER])
            got = await tap.receive_batch()
            assert type(got[0]) is SuperSegment  # the tap passes it on as it came
            assert [type(p) for p in await b.receive_batch()] == [SuperSegment, PartialChecksum]
    with path.open("rb") as file:
        records = [packet for _, packet in PcapReader(file)]
    assert records == [SUPER.complete(), SINGLE.complete(), SUPER.complete()]
    assert len(records[0]) == 20 + 20 + 45 * MSS  # one record, as on a TSO interface
    for packet in records:
        checked_by_dpkt(packet)
    with path.open("rb") as file:
        assert [len(packet) for _, packet in dpkt.pcap.Reader(file)] == [len(p) for p in records]
    # tcpdump -vv checks TCP checksums itself: every one must be "correct".
    out = subprocess.run(["tcpdump", "-nn", "-vv", "-r", str(path)], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    assert out.count("(correct)") >= 3 and "incorrect" not in out
    assert "length 65160" in out


async def test_congestion_marks_the_super_segment_header_only() -> None:
    a, b = memory_link_pair(offload=True, ce=1.0, seed=1)
    ect = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS, tos=0b10)  # ECT(0)
    await a.send_batch([ect, SUPER])  # SUPER is not ECN-capable: dropped, as a router would
    [got] = await b.receive_batch()
    assert type(got) is SuperSegment and a.send_counters.marked == 1
    ip = checked_by_dpkt(completed(got))
    assert ip.tos & 0b11 == 0b11 and ip.data.data == SEG.payload  # CE
