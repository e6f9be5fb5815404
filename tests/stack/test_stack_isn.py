"""The stack's ISN generator (RFC 6528): ISN = M + F(four-tuple, secret)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from stack_helpers import KEY, PEER, US, make_stack

from userstack.stack.isn import IsnGenerator
from userstack.wire.addr import Endpoint
from userstack.wire.packet import parse_packet

LOCAL = Endpoint(IPv4Address("10.0.0.2"), 80)
REMOTE = Endpoint(IPv4Address("10.0.0.1"), 40000)


def test_isn_is_deterministic_keyed_and_ticks_every_4_us() -> None:
    gen = IsnGenerator(b"k" * 16)
    a = gen.isn(LOCAL, REMOTE, 10.0)
    assert gen.isn(LOCAL, REMOTE, 10.0) == a
    assert gen.isn(LOCAL, REMOTE, 10.0 + 4e-6) == a + 1  # M: one tick per 4 us
    assert gen.isn(LOCAL, REMOTE, 11.0) == a + 250_000
    other_port = Endpoint(REMOTE.ip, REMOTE.port + 1)
    assert gen.isn(LOCAL, other_port, 10.0) != a  # F depends on the 4-tuple
    assert IsnGenerator(b"other key").isn(LOCAL, REMOTE, 10.0) != a  # ... and the key
    assert IsnGenerator(b"x" * 100).isn(LOCAL, REMOTE, 0.0) == IsnGenerator(b"x" * 100).isn(
        LOCAL, REMOTE, 0.0
    )
    with pytest.raises(ValueError):
        IsnGenerator(b"")


def test_isn_wraps() -> None:
    gen = IsnGenerator(b"key")
    far = gen.isn(LOCAL, Endpoint(IPv4Address("192.0.2.1"), 9), 20_000.0)  # > 2**32 ticks
    assert 0 <= far.value < 2**32


def test_timestamp_offsets_are_keyed_per_connection_and_unlike_the_isn() -> None:
    """RFC 7323 7.1: a per-connection offset for the timestamp clock, from the same secret."""
    gen = IsnGenerator(b"key")
    offset = gen.ts_offset(LOCAL, REMOTE)
    assert offset == IsnGenerator(b"key").ts_offset(LOCAL, REMOTE)  # the same inputs agree
    assert offset != gen.ts_offset(LOCAL, Endpoint(REMOTE.ip, REMOTE.port + 1))
    assert offset != IsnGenerator(b"other").ts_offset(LOCAL, REMOTE)
    assert offset != gen.isn(LOCAL, REMOTE, 0.0).value  # not the ISN's hash again
    assert 0 <= offset < 1 << 32


def test_each_syn_carries_the_clock_from_its_connections_offset() -> None:
    """The stack passes the keyed offset to each connection: the SYN's TSval is
    ts_offset(four-tuple) + milliseconds (RFC 7323 5.4, 7.1), the SYN,ACK's its own."""
    server, client = make_stack(US), make_stack(address=PEER)
    server.listen(80, 4)
    client.connect(Endpoint(US, 80), 2.5)
    [raw] = client.take_packets()
    _, syn = parse_packet(raw)
    local, remote = Endpoint(PEER, syn.src_port), Endpoint(US, 80)
    offset = IsnGenerator(KEY).ts_offset(local, remote)
    assert syn.options.timestamps == ((offset + 2500) % 2**32, 0)
    server.receive_packet(raw, 3.0)
    _, syn_ack = parse_packet(server.take_packets()[0])
    theirs = IsnGenerator(KEY).ts_offset(remote, local)
    assert syn_ack.options.timestamps == ((theirs + 3000) % 2**32, syn.options.timestamps[0])
