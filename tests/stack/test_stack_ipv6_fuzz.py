"""Hostile IPv6 and fragments against a dual stack with live connections (hypothesis): any
extension chain, next header, fragment cut, overlap or mutation is dropped, counted or
answered; nothing escapes, no bug counter moves, reassembly stays in its bounds, and what
the stack sends parses."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stack_helpers import KEY, PEER, PEER6, SYN, US, US6, packet, seg, shuttle
from test_stack_reassembly import fragments4, fragments6
from wire.wire_strategies import ipv6_packets

from userstack.stack import Stack
from userstack.tcp.config import TcpConfig
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.ipv4 import IPv4Flags, IPv4Packet
from userstack.wire.ipv6 import FragmentHeader, IPv6Packet
from userstack.wire.packet import parse_ip
from userstack.wire.tcp import TcpOptions

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def scene() -> tuple[Stack, Stack]:
    """A dual server with listeners in both families and one IPv6 connection to it."""
    server = Stack(US, address6=US6, key=KEY, config=TcpConfig())
    server.listen(80, 8, version=4)
    server.listen(80, 8, version=6)
    client = Stack(PEER6, key=KEY, config=TcpConfig())
    conn = client.connect(Endpoint(US6, 80), 0.0)
    shuttle(client, server, 0.0)
    assert conn.state is State.ESTABLISHED
    return server, client


def survives(server: Stack, packets: list[bytes], now: float = 1.0) -> None:
    server.receive_packets(packets, now)
    server.on_timer(now + 120.0)  # every reassembly timeout too
    counters = server.counters
    assert (counters.connection_bugs, counters.internal_errors) == (0, 0)
    reassembly = server.reassembly
    assert reassembly.held <= reassembly.max_bytes
    assert len(reassembly) <= reassembly.max_datagrams
    for raw in server.take_packets():
        ip = parse_ip(raw if isinstance(raw, bytes) else bytes(raw))  # what we send parses
        assert ip.src in (US, US6)


def _addressed(packet: IPv6Packet, to_us: bool) -> IPv6Packet:
    if not to_us:
        return packet
    return IPv6Packet(PEER6, US6, *(getattr(packet, f) for f in (
        "next_header", "payload", "hop_limit", "traffic_class", "flow_label", "headers")))


@FUZZ
@given(st.lists(st.tuples(ipv6_packets(), st.booleans()), min_size=1, max_size=8))
def test_any_ipv6_packet(packets: list[tuple[IPv6Packet, bool]]) -> None:
    server, _ = scene()
    survives(server, [_addressed(p, to_us).build() for p, to_us in packets])


_SYN = seg(4000, 80, SYN, seq=1, options=TcpOptions(mss=1000), payload=bytes(range(256)) * 2)


@FUZZ
@given(
    st.booleans(),
    st.integers(1, 40).map(lambda n: 8 * n),
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80), st.integers(0, 255)), max_size=6),
    st.randoms(use_true_random=False),
)
def test_cut_shuffled_mutated_fragments(
    v6: bool, size: int, mutations: list[tuple[int, int, int]], order: object
) -> None:
    """Fragments of a SYN, shuffled, some duplicated or overlapping (a second cut of the
    same datagram), some bytes changed: reassembled or dropped, never a crash."""
    server, _ = scene()
    whole = packet(_SYN, PEER6, US6) if v6 else packet(_SYN, PEER, US)
    cut = fragments6 if v6 else fragments4
    pieces = cut(whole, size) + cut(whole, size + 8)[: len(mutations)]
    for index, position, value in mutations:
        piece = bytearray(pieces[index % len(pieces)])
        piece[position % len(piece)] = value
        pieces[index % len(pieces)] = bytes(piece)
    order.shuffle(pieces)  # type: ignore[attr-defined]
    survives(server, pieces)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 0x1FFF), st.booleans(), st.integers(0, 3)), max_size=40))
def test_a_flood_of_fragments_stays_bounded(specs: list[tuple[int, bool, int]]) -> None:
    server, _ = scene()
    flood = []
    for i, (offset, more, ident) in enumerate(specs):
        size = 1232 if more else 8 * (i % 7 + 1)
        if i % 2:
            flags = IPv4Flags.MF if more else IPv4Flags(0)
            flood.append(IPv4Packet(PEER, US, 6, bytes(size), identification=ident,
                                    flags=flags, fragment_offset=offset).build())
        else:
            fragment = FragmentHeader(ident, offset, more)
            flood.append(IPv6Packet(PEER6, US6, 6, bytes(size), headers=(fragment,)).build())
    survives(server, flood)
