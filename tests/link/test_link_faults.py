"""Seeded faults: rates, determinism, what each fault does, and FaultyLink's timing and closing.

Rates are checked on a fixed seed against bounds of several standard deviations around the
configured probability: the outcome is deterministic, so the test cannot flake, and a broken
engine (a rate off by a factor, a fault never applied) lands far outside the bounds.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest
import trio
import trio.testing

from userstack.link.faults import FaultPath, Faults, FaultyLink, open_faulty_link
from userstack.link.memory import memory_link_pair
from userstack.wire import SeqNum, TcpFlags, TcpSegment, WireError, build_tcp_packet, parse_packet
from userstack.wire.ipv4 import Ecn, ecn_of
from userstack.wire.offload import OffloadedPacket
from userstack.wire.packet import build_tcp6_packet
from userstack.wire.pcapng import Fault

N = 20_000


def numbered(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") * 5 for i in range(n)]


def run_path(faults: Faults, packets: list[bytes], seed: int = 1) -> tuple[FaultPath, list[bytes]]:
    """Every packet offered at t=0, then everything taken at t=inf."""
    path = FaultPath(faults, random.Random(seed))
    for packet in packets:
        path.offer(packet, 0.0)
    return path, path.take_due(math.inf)


def assert_rate(count: int, p: float, n: int = N) -> None:
    sigma = math.sqrt(n * p * (1 - p))
    assert n * p - 5 * sigma <= count <= n * p + 5 * sigma, (count, n * p)


@pytest.mark.parametrize("field", ["loss", "duplicate", "corrupt", "reorder"])
def test_rates_are_as_configured(field: str) -> None:
    p = 0.1
    path, out = run_path(Faults(**{field: p}), numbered(N))
    counters = path.counters
    assert counters.offered == N
    counted = {"loss": counters.dropped, "duplicate": counters.duplicated,
               "corrupt": counters.corrupted, "reorder": counters.reordered}
    assert_rate(counted[field], p)
    assert [v for k, v in counted.items() if k != field] == [0, 0, 0]
    assert len(out) == N - counters.dropped + counters.duplicated


def test_all_faults_at_once_keep_their_rates() -> None:
    faults = Faults(loss=0.05, duplicate=0.05, corrupt=0.02, reorder=0.05)
    path, out = run_path(faults, numbered(N))
    c = path.counters
    assert_rate(c.dropped, 0.05)
    survivors = N - c.dropped
    assert_rate(c.corrupted, 0.02, survivors)
    assert_rate(c.duplicated, 0.05, survivors)
    assert len(out) == survivors + c.duplicated


def test_same_seed_same_faults_other_seed_other_faults() -> None:
    faults = Faults(loss=0.1, duplicate=0.1, corrupt=0.1, reorder=0.1, jitter=0.01)
    packets = numbered(2000)
    assert run_path(faults, packets, seed=5)[1] == run_path(faults, packets, seed=5)[1]
    assert run_path(faults, packets, seed=5)[1] != run_path(faults, packets, seed=6)[1]


def test_corruption_flips_exactly_one_bit() -> None:
    packets = numbered(500)
    path, out = run_path(Faults(corrupt=1.0), packets)
    assert path.counters.corrupted == 500
    for before, after in zip(packets, out, strict=True):
        diff = int.from_bytes(before, "big") ^ int.from_bytes(after, "big")
        assert diff.bit_count() == 1


def test_duplicates_follow_their_original() -> None:
    _, out = run_path(Faults(duplicate=1.0), numbered(10))
    assert out == [p for p in numbered(10) for _ in range(2)]


def test_a_held_packet_is_released_right_behind_the_next() -> None:
    path, out = run_path(Faults(reorder=0.3), numbered(1000))
    expected = numbered(1000)
    assert sorted(out) == sorted(expected)  # nothing lost, nothing doubled
    swaps = [i for i in range(999) if out[i] == expected[i + 1] and out[i + 1] == expected[i]]
    assert len(swaps) == path.counters.reordered  # every reorder is one adjacent swap
    assert path.counters.reordered > 200


def test_a_held_packet_with_nothing_behind_it_goes_out_after_reorder_hold() -> None:
    path = FaultPath(Faults(reorder=1.0, reorder_hold=0.2), random.Random(1))
    path.offer(b"only", 1.0)
    assert path.take_due(1.1) == []
    assert path.next_due() == pytest.approx(1.2)
    assert path.take_due(1.2) == [b"only"]
    assert path.counters.reordered == 0  # nothing overtook it


def test_delay_and_jitter_bound_the_due_times() -> None:
    path = FaultPath(Faults(delay=0.1, jitter=0.05), random.Random(3))
    for packet in numbered(200):
        path.offer(packet, 0.0)
    assert path.take_due(0.0999) == []
    assert len(path.take_due(0.15)) == 200


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="loss"):
        Faults(loss=1.5)
    with pytest.raises(ValueError, match="delay"):
        Faults(delay=-1)


def test_corrupted_packets_fail_the_wire_checksums() -> None:
    segment = TcpSegment(src_port=40000, dst_port=80, seq=SeqNum(1000), ack=SeqNum(2000),
                         flags=TcpFlags.ACK | TcpFlags.PSH, window=65535, payload=b"hello, world")
    packet = build_tcp_packet(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1"), segment)
    parse_packet(packet)  # the original is fine
    _, out = run_path(Faults(corrupt=1.0), [packet] * 300)
    for corrupted in out:
        with pytest.raises(WireError):
            parse_packet(corrupted)


def test_congestion_marks_ecn_capable_packets_and_drops_the_rest() -> None:
    """`ce`: an ECT packet is marked CE (the header checksum still right), a Not-ECT one
    is dropped, as an ECN router does (RFC 3168 5)."""
    segment = TcpSegment(src_port=40000, dst_port=80, seq=SeqNum(1000), ack=SeqNum(2000),
                         flags=TcpFlags.ACK, window=65535, payload=b"data")
    src, dst = IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1")
    ect = build_tcp_packet(src, dst, segment, tos=0x20 | Ecn.ECT_0)  # DSCP 8 kept
    plain = build_tcp_packet(src, dst, segment, tos=0x20)
    path, out = run_path(Faults(ce=0.1), [ect] * N)
    assert_rate(path.counters.marked, 0.1)
    assert path.counters.dropped == 0 and len(out) == N
    marked = [p for p in out if ecn_of(p) is Ecn.CE]
    assert len(marked) == path.counters.marked
    for p in marked[:5]:
        ip, parsed = parse_packet(p)  # checksums still good
        assert ip.tos == 0x20 | Ecn.CE and parsed == replace(segment, ecn=Ecn.CE)
    path, out = run_path(Faults(ce=0.1), [plain] * N)
    assert path.counters.marked == 0
    assert_rate(path.counters.dropped, 0.1)
    assert all(ecn_of(p) is Ecn.NOT_ECT for p in out)
    # anything that is not an IP header cannot be marked: dropped
    path, _ = run_path(Faults(ce=1.0), numbered(10))
    assert path.counters.dropped == 10


def test_congestion_marks_ecn_capable_ipv6_packets_in_the_traffic_class() -> None:
    segment = TcpSegment(src_port=40000, dst_port=80, seq=SeqNum(1000), ack=SeqNum(2000),
                         flags=TcpFlags.ACK, window=65535, payload=b"data", ecn=Ecn.ECT_0)
    src, dst = IPv6Address("fd00::2"), IPv6Address("fd00::1")
    ect = build_tcp6_packet(src, dst, segment, traffic_class=0x20, flow_label=7)
    path, out = run_path(Faults(ce=1.0), [ect] * 10)
    assert path.counters.marked == 10 and path.counters.dropped == 0
    ip, parsed = parse_packet(out[0])  # the TCP checksum does not cover the traffic class
    assert (ip.traffic_class, ip.flow_label) == (0x20 | Ecn.CE, 7)
    assert parsed == replace(segment, ecn=Ecn.CE)
    offloaded = OffloadedPacket.from_segment6(src, dst, replace(segment, payload=b"d" * 3000),
                                              gso_size=1000, traffic_class=0x20)
    path, out = run_path(Faults(ce=1.0), [offloaded])
    assert path.counters.marked == 1
    assert {parse_packet(p)[0].traffic_class for p in out[0].segments()} == {0x20 | Ecn.CE}
    plain = build_tcp6_packet(src, dst, replace(segment, ecn=Ecn.NOT_ECT))
    path, _ = run_path(Faults(ce=1.0), [plain] * 10)
    assert path.counters.dropped == 10


# FaultyLink: the same engine around any link, both directions.


async def test_faulty_link_applies_faults_both_ways() -> None:
    a, b = memory_link_pair()
    async with FaultyLink(a, loss=0.2, seed=9) as faulty:
        await faulty.send_batch(numbered(1000))
        got = await b.receive_batch()
        assert len(got) == 1000 - faulty.send_counters.dropped
        await b.send_batch(numbered(1000))
        got = await faulty.receive_batch()
        assert len(got) == 1000 - faulty.receive_counters.dropped
        assert_rate(faulty.send_counters.dropped, 0.2, 1000)
        assert_rate(faulty.receive_counters.dropped, 0.2, 1000)
        assert faulty.counters.dropped == (
            faulty.send_counters.dropped + faulty.receive_counters.dropped
        )


async def test_send_delay_needs_a_nursery() -> None:
    a, _ = memory_link_pair()
    with pytest.raises(ValueError, match="nursery"):
        FaultyLink(a, delay=0.1)


async def test_open_faulty_link_delays_both_ways(autojump_clock: trio.testing.MockClock) -> None:
    a, b = memory_link_pair()
    async with open_faulty_link(a, delay=0.5, seed=1) as faulty:
        start = trio.current_time()
        await faulty.send(b"out")
        assert trio.current_time() == start  # send returns at once; the packet is in flight
        assert await b.receive() == b"out"
        assert trio.current_time() - start == pytest.approx(0.5)
        await b.send(b"in")
        assert await faulty.receive() == b"in"
        assert trio.current_time() - start == pytest.approx(1.0)
    assert faulty.closed


async def test_delayed_packets_arrive_before_end_of_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_link_pair()
    async with open_faulty_link(b, reorder=1.0, reorder_hold=0.3, seed=1) as faulty:
        await a.send_batch([b"1"])
        await a.aclose()
        start = trio.current_time()
        assert await faulty.receive() == b"1"  # held back, then released after reorder_hold
        assert trio.current_time() - start == pytest.approx(0.3)
        with pytest.raises(trio.EndOfChannel):
            await faulty.receive()


async def test_closing_wakes_a_receiver_waiting_for_a_delayed_packet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_link_pair()
    with pytest.RaisesGroup(trio.ClosedResourceError, flatten_subgroups=True):
        async with (
            open_faulty_link(b, reorder=1.0, reorder_hold=10.0, seed=1) as faulty,
            trio.open_nursery() as nursery,
        ):
            await a.send(b"held")
            nursery.start_soon(faulty.receive)
            await trio.sleep(1.0)
            await faulty.aclose()
    assert trio.current_time() < 10.0


async def test_memory_pair_delay_counts_from_send_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_link_pair(delay=0.25, jitter=0.0)
    await a.send(b"first")
    await trio.sleep(1.0)  # nobody receives meanwhile
    start = trio.current_time()
    assert await b.receive() == b"first"
    assert trio.current_time() == start  # it arrived long ago


def test_the_path_reports_every_packet_with_what_it_did() -> None:
    """on_packet's engine: each packet once in offer order; a drop as DROPPED, a corrupted
    packet as its new bytes, a duplicate's second copy as DUPLICATED (for FaultCapture)."""
    seen: list[tuple[bytes, Fault | None]] = []
    path = FaultPath(Faults(loss=0.2, duplicate=0.2, corrupt=0.2), random.Random(3),
                     lambda packet, fault, now: seen.append((packet, fault)))
    packets = numbered(2000)
    for packet in packets:
        path.offer(packet, 0.0)
    delivered = path.take_due(math.inf)
    c = path.counters
    assert [f for _, f in seen].count(Fault.DROPPED) == c.dropped > 0
    assert [f for _, f in seen].count(Fault.DUPLICATED) == c.duplicated > 0
    assert [f for _, f in seen].count(Fault.CORRUPTED) == c.corrupted > 0
    assert [p for p, f in seen if f is not Fault.DROPPED] == delivered  # what left, in order
    assert len(seen) == len(packets) + c.duplicated
