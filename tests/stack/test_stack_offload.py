"""The stack with an offloading link: partial checksums out, vouched-for packets in.

A stack built with `offload=` sends every TCP packet as an `OffloadedPacket` (the link
completes the checksum); a packet the link vouches for is not checksummed again, and every
other packet still is. Sans-I/O: the tests move packets by hand.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from stack_helpers import ACK, KEY, PEER, US, connected_pair, seg

from userstack.stack import Stack
from userstack.tcp.config import TcpConfig
from userstack.wire.addr import Endpoint
from userstack.wire.offload import (
    CHECKSUM_OFFLOAD,
    TSO,
    OffloadCapability,
    OffloadedPacket,
    PartialChecksum,
    SuperSegment,
    delivered,
)
from userstack.wire.packet import parse_tcp_packet


def offloading_pair(
    capability: OffloadCapability,
) -> tuple[Stack, Stack]:
    server = Stack(US, key=KEY, config=TcpConfig(), offload=capability)
    client = Stack(PEER, key=KEY, config=TcpConfig(), offload=capability)
    return server, client


def shuttle_offloaded(a: Stack, b: Stack, now: float) -> list[object]:
    """Like stack_helpers.shuttle, through `delivered` (a memory link with offload)."""
    seen: list[object] = []
    while True:
        pa, pb = a.take_packets(), b.take_packets()
        if not pa and not pb:
            return seen
        seen += pa + pb
        b.receive_packets(delivered(pa, whole=True), now)
        a.receive_packets(delivered(pb, whole=True), now)


def test_every_tcp_packet_leaves_with_a_partial_checksum() -> None:
    server, client = offloading_pair(CHECKSUM_OFFLOAD)
    server.listen(80, 4)
    conn = client.connect(Endpoint(US, 80), 0.0)
    seen = shuttle_offloaded(client, server, 0.0)
    peer = server.accept(80)
    assert peer is not None
    assert len(seen) == 3 and all(type(p) is OffloadedPacket for p in seen)
    assert all(p.gso_size == 0 for p in seen)  # type: ignore[attr-defined]
    data = bytes(i % 256 for i in range(4 * 1460))  # full segments: Nagle holds none
    assert conn.send(data, 0.0) == len(data)
    shuttle_offloaded(client, server, 0.0)
    assert peer.receive(1 << 20, 0.0) == data
    assert server.counters.malformed == client.counters.malformed == 0
    assert server.counters.internal_errors == 0


def test_a_stray_segment_is_answered_with_a_plain_rst() -> None:
    server, _ = offloading_pair(TSO)
    server.receive_packets([OffloadedPacket.from_segment(PEER, US, seg(5, 81, ACK)).complete()],
                           0.0)
    [rst] = server.take_packets()
    assert type(rst) is bytes and parse_tcp_packet(rst)[1].flags & 0x04


def test_a_super_segment_is_taken_whole_without_a_checksum() -> None:
    # the train is made by hand, without the timestamps RFC 7323 3.2 would then require
    server, _, conn, peer = connected_pair(timestamps=False)
    info = conn.info(0.0)
    payload = bytes(i % 251 for i in range(45 * 1448))
    segment = seg(info.local.port, 80, ACK, seq=info.snd_nxt, ack=info.rcv_nxt or 0,
                  payload=payload)
    offloaded = OffloadedPacket.from_segment(PEER, US, segment, gso_size=1448)
    server.receive_packets([SuperSegment(offloaded.header + offloaded.payload)], 0.0)
    assert peer.receive(1 << 20, 0.0) == payload
    assert server.counters.malformed == 0
    ack, *window_update = [parse_tcp_packet(p)[1] for p in server.take_packets()]
    assert ack.ack.value == (info.snd_nxt + len(payload)) & 0xFFFFFFFF  # one ACK for the train
    assert all(s.ack == ack.ack and not s.payload for s in window_update)


def test_an_unvouched_packet_with_a_partial_checksum_is_dropped() -> None:
    server, _, conn, _ = connected_pair()
    info = conn.info(0.0)
    segment = seg(info.local.port, 80, ACK, seq=info.snd_nxt, ack=info.rcv_nxt or 0,
                  payload=b"not checked by anyone")
    offloaded = OffloadedPacket.from_segment(PEER, US, segment)
    server.receive_packets([offloaded.header + offloaded.payload], 0.0)
    assert server.counters.malformed == 1
    server.receive_packets([PartialChecksum(offloaded.header + offloaded.payload)], 0.0)
    assert server.counters.malformed == 1


def test_wrong_address_still_counts_with_offload() -> None:
    server, _ = offloading_pair(TSO)
    other = IPv4Address("10.0.0.9")
    offloaded = OffloadedPacket.from_segment(PEER, other, seg(5, 80, ACK))
    server.receive_packets([PartialChecksum(offloaded.header + offloaded.payload)], 0.0)
    assert server.counters.not_for_us == 1
