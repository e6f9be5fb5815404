"""Malformed input raises WireError with a clear message, and only ever WireError."""

from __future__ import annotations

import contextlib
import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import icmp_echoes, tcp_segments

from userstack.wire import (
    IcmpEcho,
    IcmpType,
    IPv4Flags,
    IPv4Packet,
    SeqNum,
    TcpFlags,
    TcpOptions,
    TcpSegment,
    WireError,
    build_icmp_packet,
    build_tcp_packet,
    internet_checksum,
    ipv4_header,
    parse_packet,
    parse_tcp_packet,
    pseudo_header_sum,
)

A = IPv4Address("10.0.0.1")
B = IPv4Address("10.0.0.2")
SEG = TcpSegment(40000, 80, SeqNum(1), SeqNum(2), TcpFlags.ACK, 1000, payload=b"data")


def fix_ip_checksum(packet: bytearray) -> bytearray:
    hlen = (packet[0] & 0xF) * 4
    packet[10:12] = b"\0\0"
    packet[10:12] = internet_checksum(packet[:hlen]).to_bytes(2, "big")
    return packet


def fix_tcp_checksum(segment: bytearray, src: IPv4Address = A, dst: IPv4Address = B) -> bytes:
    segment[16:18] = b"\0\0"
    checksum = internet_checksum(segment, pseudo_header_sum(src, dst, 6, len(segment)))
    segment[16:18] = checksum.to_bytes(2, "big")
    return bytes(segment)


def tcp_with_raw_options(options: bytes) -> bytes:
    """A segment A -> B whose options area is ``options`` (padded to 4), checksum valid."""
    options += bytes(-len(options) % 4)
    raw = bytearray(SEG.build(A, B))
    raw[12] = (20 + len(options)) << 2
    return fix_tcp_checksum(raw[:20] + bytearray(options) + raw[20:])


# --- IPv4 -----------------------------------------------------------------------------


def ip_packet(**changes: int) -> bytearray:
    raw = bytearray(build_tcp_packet(A, B, SEG))
    for offset, value in changes.items():
        raw[int(offset.lstrip("b"))] = value
    return fix_ip_checksum(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "too short"),
        (bytes(ip_packet()[:19]), "too short"),
        (bytes(ip_packet(b0=0x65)), "not IPv4: version 6"),
        (bytes(ip_packet(b0=0x44)), "IHL 4 is below"),
        (bytes(ip_packet(b0=0x4F)), "runs past"),
        (bytes(ip_packet()[:-1]), "does not match"),
        (bytes(ip_packet()) + b"\0", "does not match"),
        (bytes(ip_packet(b3=0x10)), "does not match"),
    ],
)
def test_ipv4_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        IPv4Packet.parse(raw)


def test_ipv4_bad_checksum() -> None:
    raw = ip_packet()
    raw[10] ^= 1
    with pytest.raises(WireError, match="bad IPv4 header checksum"):
        IPv4Packet.parse(bytes(raw))


def test_fragments_parse_and_say_so() -> None:
    """A fragment is a packet like any other to the codec; the stack reassembles it."""
    first = IPv4Packet(A, B, 6, b"x" * 8, flags=IPv4Flags.MF)
    later = IPv4Packet(A, B, 6, b"y" * 3, flags=IPv4Flags(0), fragment_offset=1)
    assert IPv4Packet.parse(first.build()) == first and first.is_fragment
    assert IPv4Packet.parse(later.build()) == later and later.is_fragment
    assert not IPv4Packet(A, B, 6, b"z").is_fragment


def test_other_protocols_are_refused() -> None:
    raw = IPv4Packet(A, B, 17, b"udp?").build()
    with pytest.raises(WireError, match="protocol 17"):
        parse_packet(raw)
    with pytest.raises(WireError, match="not TCP"):
        parse_tcp_packet(build_icmp_packet(A, B, IcmpEcho(IcmpType.ECHO_REQUEST, 1, 1)))


def test_ipv4_build_misuse() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        ipv4_header(A, B, 6, 0, options=b"abc")
    with pytest.raises(ValueError, match="cannot build"):
        ipv4_header(A, B, 6, 70000)
    with pytest.raises(ValueError, match="fragment offset"):
        ipv4_header(A, B, 6, 0, fragment_offset=0x2000)


# --- TCP ------------------------------------------------------------------------------


def test_tcp_too_short() -> None:
    with pytest.raises(WireError, match="too short"):
        TcpSegment.parse(SEG.build(A, B)[:19], A, B)


@pytest.mark.parametrize(("offset_byte", "message"), [(0x40, "below the minimum"), (0xF0, "past")])
def test_tcp_data_offset(offset_byte: int, message: str) -> None:
    raw = bytearray(SEG.build(A, B))
    raw[12] = offset_byte
    with pytest.raises(WireError, match=message):
        TcpSegment.parse(fix_tcp_checksum(raw), A, B)


def test_tcp_bad_checksum() -> None:
    raw = SEG.build(A, B)
    with pytest.raises(WireError, match="bad TCP checksum"):
        TcpSegment.parse(raw, A, IPv4Address("10.0.0.3"))  # pseudo-header covers addresses
    with pytest.raises(WireError, match="bad TCP checksum"):
        TcpSegment.parse(raw[:-1] + b"X", A, B)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (b"\x01\x01\x01\x02", "no length byte"),
        (b"\x02\x00\x00\x00", r"length 0 \(< 2\)"),
        (b"\x22\x01\x00\x00", r"length 1 \(< 2\)"),
        (b"\x02\x08\x05\xb4", "overruns"),
        (b"\x02\x03\x05\x00", "kind 2 must have length 4, not 3"),
        (b"\x02\x05\x05\xb4\x00\x00\x00\x00", "kind 2 must have length 4, not 5"),
        (b"\x03\x04\x07\x00", "kind 3 must have length 3"),
        (b"\x04\x03\x00\x00", "kind 4 must have length 2"),
        (b"\x08\x06\x00\x00\x00\x00\x00\x00", "kind 8 must have length 10"),
        (b"\x05\x02\x00\x00", "SACK option length 2"),
        (b"\x05\x06\x00\x00\x00\x00\x00\x00", "SACK option length 6"),
    ],
)
def test_bad_options(options: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        TcpSegment.parse(tcp_with_raw_options(options), A, B)


def test_option_parsing_details() -> None:
    # EOL ends the list even if junk follows; NOPs anywhere; unknown kinds kept raw.
    seg = TcpSegment.parse(
        tcp_with_raw_options(b"\x01\x22\x04ab\x01\x02\x04\x05\xb4\x00\x99\x99"), A, B
    )
    assert seg.options == TcpOptions(mss=1460, unknown=((0x22, b"ab"),))
    assert seg.payload == b"data"
    # A repeated kind keeps its last value (as Linux does).
    seg = TcpSegment.parse(tcp_with_raw_options(b"\x02\x04\x00\x01\x02\x04\x00\x02"), A, B)
    assert seg.options.mss == 2


def test_tcp_build_misuse() -> None:
    with pytest.raises(ValueError, match="at most 40"):
        TcpOptions(unknown=((99, bytes(40)),)).build()
    with pytest.raises(ValueError, match="cannot be carried as unknown"):
        TcpOptions(unknown=((2, b"\x05\xb4"),)).build()
    with pytest.raises(ValueError, match="cannot build TCP options"):
        TcpOptions(window_scale=256).build()
    with pytest.raises(ValueError, match="cannot build TCP segment"):
        TcpSegment(70000, 1, SeqNum(0), SeqNum(0), TcpFlags.SYN, 0).build(A, B)


# --- ICMP -----------------------------------------------------------------------------


def test_icmp_rejects() -> None:
    echo = IcmpEcho(IcmpType.ECHO_REQUEST, 1, 2, b"abc").build()
    with pytest.raises(WireError, match="too short"):
        IcmpEcho.parse(echo[:7])
    with pytest.raises(WireError, match="bad ICMP checksum"):
        IcmpEcho.parse(echo[:-1] + b"X")
    unreachable = bytearray(echo)
    unreachable[0] = 3
    unreachable[2:4] = b"\0\0"
    unreachable[2:4] = internet_checksum(unreachable).to_bytes(2, "big")
    with pytest.raises(WireError, match="type 3 is not an echo"):
        IcmpEcho.parse(bytes(unreachable))


# --- fuzz: only WireError may escape ---------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_wire_error(raw: bytes) -> None:
    with contextlib.suppress(WireError):
        parse_packet(raw)


@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes(raw: bytes) -> None:
    parses_or_wire_error(raw)
    with contextlib.suppress(WireError):
        TcpOptions.parse(raw[:40])
    for parse in (IPv4Packet.parse, IcmpEcho.parse):
        with contextlib.suppress(WireError):
            parse(raw)


@FUZZ
@given(st.binary(min_size=20, max_size=60))
def test_random_ipv4_shaped_bytes(raw: bytes) -> None:
    """Random bytes with a plausible version, length and checksum reach the deeper checks."""
    packet = bytearray(raw)
    packet[0] = 0x40 | (packet[0] & 0xF)
    packet[2:4] = struct.pack(">H", len(packet))
    packet[6] &= 0x40  # not a fragment
    parses_or_wire_error(bytes(fix_ip_checksum(packet)) if packet[0] & 0xF >= 5 else raw)


mutations = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4)


@FUZZ
@given(tcp_segments, mutations, st.integers(-8, 8), st.booleans())
def test_mutated_tcp_packets(
    seg: TcpSegment, changes: list[tuple[int, int]], resize: int, fix_checksums: bool
) -> None:
    raw = bytearray(build_tcp_packet(A, B, seg))
    for position, value in changes:
        raw[position % len(raw)] = value
    if resize < 0:
        del raw[resize:]
    else:
        raw += bytes(resize)
    if fix_checksums and len(raw) >= 40:
        raw[0], raw[2:4], raw[6:8] = 0x45, struct.pack(">H", len(raw)), b"\x40\0"
        src, dst = IPv4Address(bytes(raw[12:16])), IPv4Address(bytes(raw[16:20]))
        body = fix_tcp_checksum(raw[20:], src, dst)
        raw = fix_ip_checksum(raw[:20] + bytearray(body))
    parses_or_wire_error(bytes(raw))


@FUZZ
@given(icmp_echoes, mutations, st.integers(-8, 8))
def test_mutated_icmp_packets(echo: IcmpEcho, changes: list[tuple[int, int]], resize: int) -> None:
    raw = bytearray(build_icmp_packet(A, B, echo))
    for position, value in changes:
        raw[position % len(raw)] = value
    raw = raw[:resize] if resize < 0 else raw + bytes(resize)
    parses_or_wire_error(bytes(raw))
