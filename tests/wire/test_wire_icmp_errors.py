"""ICMP error messages (RFC 792): the quoted four-tuple and sequence number, the next-hop
MTU (RFC 1191 4), the IPv4 TTL and TOS we send; garbage is WireError and nothing else."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from userstack.wire import (
    IcmpError,
    IcmpType,
    IPv4Packet,
    SeqNum,
    TcpFlags,
    TcpSegment,
    WireError,
    build_icmp_error_packet,
    build_tcp_packet,
    icmp_error_message,
    internet_checksum,
    parse_packet,
)

US = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.1")
ROUTER = IPv4Address("192.0.2.1")
OURS = build_tcp_packet(
    US, PEER, TcpSegment(40000, 80, SeqNum(0xDEADBEEF), SeqNum(7), TcpFlags.ACK, 1000,
                         payload=b"x" * 100)
)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (IcmpType.DESTINATION_UNREACHABLE, 3),
        (IcmpType.DESTINATION_UNREACHABLE, 1),
        (IcmpType.SOURCE_QUENCH, 0),
        (IcmpType.TIME_EXCEEDED, 0),
        (IcmpType.PARAMETER_PROBLEM, 0),
    ],
)
def test_each_error_type_quotes_our_four_tuple_and_sequence(kind: IcmpType, code: int) -> None:
    raw = build_icmp_error_packet(ROUTER, US, kind, code, OURS)
    ip, error = parse_packet(raw)
    assert ip.src == ROUTER
    assert error == IcmpError(kind, code, US, PEER, 6, 40000, 80, SeqNum(0xDEADBEEF),
                              next_hop_mtu=0, original_length=len(OURS))


def test_fragmentation_needed_carries_the_next_hop_mtu() -> None:
    raw = build_icmp_error_packet(ROUTER, US, IcmpType.DESTINATION_UNREACHABLE, 4, OURS,
                                  next_hop_mtu=1280)
    _, error = parse_packet(raw)
    assert isinstance(error, IcmpError) and error.next_hop_mtu == 1280
    # the same field in any other message is unused, not an MTU
    other = icmp_error_message(IcmpType.DESTINATION_UNREACHABLE, 1, OURS, next_hop_mtu=1280)
    assert IcmpError.parse(other).next_hop_mtu == 0


def test_more_than_eight_quoted_bytes_is_fine_and_dpkt_agrees() -> None:
    """RFC 1812 4.3.2.3: routers may quote as much as fits in 576 bytes."""
    body = icmp_error_message(IcmpType.DESTINATION_UNREACHABLE, 3, OURS, quote=60)
    error = IcmpError.parse(body)
    assert (error.src_port, error.dst_port, error.seq) == (40000, 80, SeqNum(0xDEADBEEF))
    theirs = dpkt.icmp.ICMP(body)
    assert (theirs.type, theirs.code) == (3, 3)
    inner = theirs.data.data  # the quoted IP header
    assert (inner.src, inner.dst, inner.p) == (US.packed, PEER.packed, 6)


def _with_checksum(body: bytes) -> bytes:
    body = body[:2] + b"\0\0" + body[4:]
    return body[:2] + internet_checksum(body).to_bytes(2, "big") + body[4:]


_GOOD = icmp_error_message(IcmpType.DESTINATION_UNREACHABLE, 3, OURS)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_GOOD[:7], "too short for a header"),
        (_GOOD[:-1] + bytes([_GOOD[-1] ^ 1]), "checksum"),
        (_with_checksum(_GOOD[:8 + 19]), "too short to quote"),
        (_with_checksum(_GOOD[:8 + 20 + 7]), "fewer than 8 bytes"),
        (_with_checksum(_GOOD[:8] + b"\x65" + _GOOD[9:]), "version 6"),
        (_with_checksum(_GOOD[:8] + b"\x44" + _GOOD[9:]), "IHL 4"),
        (_with_checksum(_GOOD[:8] + b"\x46" + _GOOD[9:]), "fewer than 8 bytes"),  # IHL 6
        (_with_checksum(_GOOD[:14] + b"\x20\x01" + _GOOD[16:]), "later fragment"),
        (_with_checksum(b"\x08" + _GOOD[1:]), "not an error"),  # an echo request
    ],
)
def test_garbage_is_wire_error(body: bytes, why: str) -> None:
    with pytest.raises(WireError, match=why):
        IcmpError.parse(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 40))
def test_nothing_but_wire_error_escapes(junk: bytes, cut: int) -> None:
    for body in (junk, _with_checksum(_GOOD[:cut] + junk) if cut >= 4 else junk):
        with contextlib.suppress(WireError):
            IcmpError.parse(body)


def test_build_refuses_what_is_not_an_error_type() -> None:
    with pytest.raises(ValueError, match="not an ICMP error type"):
        icmp_error_message(IcmpType.ECHO_REQUEST, 0, OURS)


def test_tcp_packets_carry_the_ttl_and_tos_asked_for() -> None:
    """RFC 9293 3.9.1 MUST-48 (DiffServ) and 3.9.2 MUST-49 (TTL), at the codec."""
    seg = TcpSegment(1, 2, SeqNum(3), SeqNum(4), TcpFlags.ACK, 5)
    ip = IPv4Packet.parse(build_tcp_packet(US, PEER, seg, ttl=7, tos=0xB8))
    assert (ip.ttl, ip.tos) == (7, 0xB8)
    assert dpkt.ip.IP(build_tcp_packet(US, PEER, seg, ttl=7, tos=0xB8)).tos == 0xB8
