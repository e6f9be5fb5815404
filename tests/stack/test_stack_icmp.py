"""ICMP errors through the stack (RFC 9293 3.9.2.1): demultiplexed by the quoted
four-tuple, checked and counted; and the TTL and DiffServ byte of each connection's
packets (MUST-48, MUST-49)."""

from __future__ import annotations

import pytest
from stack_helpers import (
    PEER,
    SYN,
    US,
    connected_pair,
    icmp_about,
    make_stack,
    packet,
    seg,
    shuttle,
)

from userstack.stack import Stack
from userstack.tcp.config import TcpConfig
from userstack.tcp.events import Closed, Error, ErrorReason
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.icmp import IcmpType
from userstack.wire.ipv4 import IPv4Packet

UNREACHABLE = IcmpType.DESTINATION_UNREACHABLE


def test_an_error_reaches_the_connection_whose_four_tuple_it_quotes() -> None:
    server, client, a, _ = connected_pair()
    server.listen(81, 4)
    b = client.connect(Endpoint(US, 81), 0.0)
    shuttle(client, server, 0.0)
    b.send(b"to b", 0.1)
    [sent] = client.take_packets()
    client.receive_packet(icmp_about(sent, 1), 0.2)  # host unreachable: soft
    assert client.counters.icmp_errors_accepted == 1
    assert b.info(0.2).soft_error == "no route to host" and b.state is State.ESTABLISHED
    assert a.info(0.2).soft_error is None
    assert client.take_packets() == []


def test_an_error_quoting_a_sequence_number_not_in_flight_is_counted_and_dropped() -> None:
    """RFC 5927 4.1: the blind attacker's guess at a four-tuple is not enough."""
    _, client, conn, _ = connected_pair()
    conn.send(b"data", 0.1)
    client.take_packets()
    snd_nxt = conn.info(0.1).snd_nxt
    forged = packet(seg(conn.local.port, 80, SYN, seq=snd_nxt + 1000), src=PEER, dst=US)
    client.receive_packet(icmp_about(forged, 3), 0.2)  # port unreachable
    assert client.counters.icmp_errors_out_of_window == 1
    assert client.counters.icmp_errors_accepted == 0
    assert conn.info(0.2).soft_error is None and conn.state is State.ESTABLISHED


def test_port_unreachable_answering_our_syn_refuses_and_removes_the_connection() -> None:
    """SHLD-26: a hard error aborts a connection in SYN-SENT (ECONNREFUSED, as Linux)."""
    stack = make_stack(address=PEER)
    conn = stack.connect(Endpoint(US, 80), 0.0)
    [syn] = stack.take_packets()
    stack.take_events()
    stack.receive_packet(icmp_about(syn, 3), 0.1)
    assert conn.state is State.CLOSED
    [(_, events)] = stack.take_events()
    assert [e for e in events if isinstance(e, Error | Closed)] == [
        Error(ErrorReason.CONNECTION_REFUSED),
        Closed(),
    ]
    assert stack.connections(0.1) == [] and stack.take_packets() == []  # no RST to anybody
    assert stack.next_deadline() is None


def test_fragmentation_needed_shrinks_the_segments_and_the_data_still_arrives() -> None:
    """SHLD-6 / RFC 1191: a router with a 576-byte next hop; the stack resends at once."""
    server, client, conn, peer = connected_pair(nagle=False)
    data = bytes(range(256)) * 16
    conn.send(data, 0.1)
    first, *_ = client.take_packets()  # all lost beyond the router
    assert len(first) == 1500
    client.receive_packet(icmp_about(first, 4, mtu=576), 0.15)
    assert conn.info(0.15).mss == 536 - 12  # 576 - 40, less the timestamps of every segment
    again = client.take_packets()
    assert again and all(len(p) <= 576 for p in again)
    for p in again:
        server.receive_packet(p, 0.2)
    shuttle(client, server, 0.2)
    assert peer.receive(1 << 16, 0.3) == data


def test_each_connection_sends_with_its_own_ttl_and_tos() -> None:
    """MUST-49 (TTL) and MUST-48 (DiffServ): the stack's default, or the connection's."""
    stack = Stack(PEER, key=bytes(16), config=TcpConfig(ttl=3, tos=0x28))
    stack.connect(Endpoint(US, 80), 0.0)
    stack.connect(Endpoint(US, 81), 0.0, config=TcpConfig(ttl=200, tos=0xB8))  # EF
    first, second = (IPv4Packet.parse(p) for p in stack.take_packets())
    assert (first.ttl, first.tos) == (3, 0x28)
    assert (second.ttl, second.tos) == (200, 0xB8)
    stack.on_timer(1.0)  # the SYN retransmissions too
    assert sorted((p.ttl, p.tos) for p in map(IPv4Packet.parse, stack.take_packets())) == [
        (3, 0x28),
        (200, 0xB8),
    ]


@pytest.mark.parametrize(
    "bad", [{"ttl": 0}, {"ttl": 256}, {"tos": 256}, {"tos": -4}, {"tos": 0xB9}]
)
def test_ttl_and_tos_are_checked_when_configured(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"^(ttl|tos) must"):
        TcpConfig(**bad)  # type: ignore[arg-type]
