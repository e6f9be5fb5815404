"""The virtio-net header codec, and the offloaded packets: checked against dpkt.

An offloaded packet's checksum is left to the link; `complete()` and `segments()` are what
the kernel would make of it, so dpkt (which computes checksums on its own) must accept
every one of their packets, and the pieces must carry exactly the super-segment's bytes.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import tcp_segments

from userstack.wire import SeqNum, TcpFlags, TcpOptions, TcpSegment, WireError, build_tcp_packet
from userstack.wire.ipv4 import Ecn
from userstack.wire.offload import (
    CHECKSUM_OFFLOAD,
    OffloadCapability,
    OffloadedPacket,
    PartialChecksum,
    SuperSegment,
    ValidChecksum,
    Vouched,
    completed,
    link_packet_bytes,
)
from userstack.wire.packet import build_tcp6_packet, parse_tcp_packet
from userstack.wire.virtio import (
    VIRTIO_NET_HDR,
    GsoType,
    VirtioFlags,
    VirtioNetHdr,
    tcp_virtio_header,
)

A = IPv4Address("10.0.0.1")
B = IPv4Address("10.0.0.2")
MSS = 1460
SEG = TcpSegment(40000, 80, SeqNum(4_294_967_000), SeqNum(7), TcpFlags.ACK | TcpFlags.PSH,
                 1000, TcpOptions(timestamps=(1, 2)), payload=bytes(range(256)) * 200)


def dpkt_checks(packet: bytes) -> dpkt.tcp.TCP:
    """dpkt's own view: both checksums recomputed by dpkt must equal the ones on the wire."""
    ip = dpkt.ip.IP(packet)
    tcp = ip.data
    assert isinstance(tcp, dpkt.tcp.TCP)
    sent_ip, sent_tcp = ip.sum, tcp.sum
    ip.sum = tcp.sum = 0
    rebuilt = dpkt.ip.IP(bytes(ip))
    assert (rebuilt.sum, rebuilt.data.sum) == (sent_ip, sent_tcp)
    return tcp


# --- the virtio-net header ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    flags=st.sampled_from([VirtioFlags(0), VirtioFlags.NEEDS_CSUM, VirtioFlags.DATA_VALID]),
    gso_type=st.sampled_from(list(GsoType)),
    ecn=st.booleans(),
    fields=st.tuples(*[st.integers(0, 0xFFFF)] * 4),
)
def test_virtio_header_round_trips_and_matches_construct(
    flags: VirtioFlags, gso_type: GsoType, ecn: bool, fields: tuple[int, int, int, int]
) -> None:
    hdr = VirtioNetHdr(flags, gso_type, *fields, ecn=ecn)
    raw = hdr.build()
    assert VirtioNetHdr.parse(raw) == hdr
    parsed = VIRTIO_NET_HDR.compiled.parse(raw)
    assert (parsed.flags, parsed.gso_type, parsed.hdr_len) == (
        flags, gso_type | (0x80 if ecn else 0), fields[0])


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=12))
def test_virtio_header_parse_raises_wire_error_only(raw: bytes) -> None:
    try:
        hdr = VirtioNetHdr.parse(raw)
    except WireError:
        assert len(raw) < 10 or raw[0] & ~7 or raw[1] & 0x7F not in (0, 1, 3, 4, 5)
    else:
        assert hdr.build() == raw[:10]


@pytest.mark.parametrize(("raw", "message"), [
    (bytes(9), "needs 10 bytes"),
    (bytes([8]) + bytes(9), "unknown virtio-net header flags"),
    (bytes([0, 2]) + bytes(8), "unknown virtio-net gso_type"),
])
def test_virtio_header_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        VirtioNetHdr.parse(raw)


def test_virtio_header_build_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="cannot build"):
        VirtioNetHdr(gso_size=70000).build()


def test_tcp_headers_are_what_linux_expects() -> None:
    assert VirtioNetHdr.parse(tcp_virtio_header(20, 32, 1448)) == VirtioNetHdr(
        VirtioFlags.NEEDS_CSUM, GsoType.TCPV4, 52, 1448, 20, 16)
    assert VirtioNetHdr.parse(tcp_virtio_header(20, 20, 0)).gso_type is GsoType.NONE
    assert VirtioNetHdr.parse(tcp_virtio_header(40, 32, 1428, ipv6=True)) == VirtioNetHdr(
        VirtioFlags.NEEDS_CSUM, GsoType.TCPV6, 72, 1428, 40, 16)
    assert VirtioNetHdr.parse(tcp_virtio_header(40, 20, 0, ipv6=True)).gso_type is GsoType.NONE


# --- sending: OffloadedPacket ---------------------------------------------------------------


def test_capability_rules() -> None:
    with pytest.raises(ValueError, match="needs checksum offload"):
        OffloadCapability(segmentation=True)
    with pytest.raises(ValueError, match="max_packet"):
        OffloadCapability(checksum=True, max_packet=70000)
    assert not CHECKSUM_OFFLOAD.segmentation


@settings(max_examples=100, deadline=None)
@given(seg=tcp_segments, ident=st.integers(0, 0xFFFF))
def test_complete_is_the_ordinary_packet(seg: TcpSegment, ident: int) -> None:
    offloaded = OffloadedPacket.from_segment(A, B, seg, ttl=9, tos=4, identification=ident)
    assert offloaded.gso_size == 0
    plain = build_tcp_packet(A, B, seg, ttl=9, tos=4, identification=ident)
    assert offloaded.complete() == plain == bytes(offloaded) == link_packet_bytes(offloaded)
    assert len(offloaded) == len(plain)
    assert offloaded.header + bytes(offloaded.payload) != plain or seg.build(A, B)[16:18] == (
        offloaded.header[36:38])  # only the checksum field differs


def test_partial_checksum_field_is_the_pseudo_header_sum() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, SEG)
    tcp_len = len(offloaded) - 20
    pseudo = int(A) + int(B) + 6 + tcp_len
    assert int.from_bytes(offloaded.header[36:38], "big") == pseudo % 0xFFFF


def test_super_segment_keeps_its_payload_apart() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS)
    assert offloaded.payload is SEG.payload
    assert (offloaded.gso_size, len(offloaded.header), len(offloaded)) == (MSS, 52, 52 + 51200)
    hdr = VirtioNetHdr.parse(offloaded.virtio_header)
    assert (hdr.gso_type, hdr.gso_size, hdr.hdr_len, hdr.csum_start, hdr.csum_offset) == (
        GsoType.TCPV4, MSS, 52, 20, 16)


def test_a_super_segment_with_cwr_says_gso_ecn() -> None:
    """RFC 3168 6.1.2: CWR on a super-segment sets virtio's GSO_ECN (Linux's own TSO sets
    SKB_GSO_TCP_ECN), and the kernel's GSO keeps CWR on the first piece only; every piece
    carries the segment's ECT(0) beside the DiffServ bits."""
    cwr = replace(SEG, flags=SEG.flags | TcpFlags.CWR, ecn=Ecn.ECT_0)
    offloaded = OffloadedPacket.from_segment(A, B, cwr, gso_size=MSS, tos=0x20)
    assert VirtioNetHdr.parse(offloaded.virtio_header).ecn
    plain = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS)
    assert not VirtioNetHdr.parse(plain.virtio_header).ecn
    pieces = [parse_tcp_packet(p) for p in offloaded.segments()]
    assert [bool(tcp.flags & TcpFlags.CWR) for _, tcp in pieces] == [True] + [False] * (
        len(pieces) - 1)
    assert {ip.tos for ip, _ in pieces} == {0x20 | Ecn.ECT_0}


def test_a_segment_that_fits_is_not_a_super_segment() -> None:
    small = replace(SEG, payload=b"x" * MSS)
    assert OffloadedPacket.from_segment(A, B, small, gso_size=MSS).gso_size == 0


def test_complete_super_segment_passes_dpkt() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS, identification=5)
    tcp = dpkt_checks(offloaded.complete())
    assert tcp.data == SEG.payload


@pytest.mark.parametrize("flags", [
    TcpFlags.ACK, TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN, TcpFlags.ACK | TcpFlags.CWR,
])
@pytest.mark.parametrize("length", [MSS + 1, 2 * MSS, 51200, 65483])
def test_software_segmentation_is_what_gso_makes(flags: TcpFlags, length: int) -> None:
    seg = replace(SEG, flags=flags, payload=bytes(i % 251 for i in range(length)))
    pieces = OffloadedPacket.from_segment(
        A, B, seg, gso_size=MSS, identification=0xFFFE).segments()
    assert len(pieces) == -(-length // MSS)
    delivered = b""
    for i, raw in enumerate(pieces):
        tcp = dpkt_checks(raw)
        ip, parsed = parse_tcp_packet(raw)  # and our own parser accepts it, checksum verified
        assert ip.identification == (0xFFFE + i) & 0xFFFF
        assert parsed.seq == seg.seq + len(delivered)
        assert (parsed.ack, parsed.window, parsed.options) == (seg.ack, seg.window, seg.options)
        last = i == len(pieces) - 1
        assert len(tcp.data) == (length - MSS * i if last else MSS)
        assert bool(parsed.flags & TcpFlags.FIN) == (last and bool(flags & TcpFlags.FIN))
        assert bool(parsed.flags & TcpFlags.PSH) == (last and bool(flags & TcpFlags.PSH))
        assert bool(parsed.flags & TcpFlags.CWR) == (i == 0 and bool(flags & TcpFlags.CWR))
        delivered += tcp.data
    assert delivered == seg.payload


def test_segments_of_a_single_packet_is_the_complete_packet() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, replace(SEG, payload=b"hi"))
    assert offloaded.segments() == [offloaded.complete()]


# --- receiving: vouched-for packets ---------------------------------------------------------


def test_vouched_packets_are_bytes_and_skip_only_the_checksum() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, SEG, gso_size=MSS)
    packet = SuperSegment(offloaded.header + offloaded.payload)
    assert isinstance(packet, bytes) and isinstance(packet, Vouched)
    ip_payload = packet[20:]
    with pytest.raises(WireError, match="bad TCP checksum"):
        TcpSegment.parse(ip_payload, A, B)
    assert TcpSegment.parse(ip_payload, A, B, verify=False).payload == SEG.payload
    with pytest.raises(WireError, match="data offset"):  # everything else is still checked
        TcpSegment.parse(bytes(12) + b"\x10" + bytes(7), A, B, verify=False)


def test_completed_fills_in_a_partial_checksum_only() -> None:
    offloaded = OffloadedPacket.from_segment(A, B, SEG)
    partial = PartialChecksum(offloaded.header + offloaded.payload)
    assert completed(partial) == offloaded.complete()
    dpkt_checks(completed(partial))
    valid = ValidChecksum(offloaded.complete())
    assert completed(valid) is valid
    plain = b"\x45" + bytes(19)
    assert completed(plain) is plain


# --- IPv6 (TSO6) ----------------------------------------------------------------------------

A6, B6 = IPv6Address("fd00::1"), IPv6Address("fd00::2")
MSS6 = 1440


def test_ipv6_complete_is_the_ordinary_packet() -> None:
    offloaded = OffloadedPacket.from_segment6(A6, B6, SEG, hop_limit=9, traffic_class=4,
                                              flow_label=0x12345)
    assert (offloaded.ipv6, offloaded.ip_header_len, offloaded.gso_size) == (True, 40, 0)
    plain = build_tcp6_packet(A6, B6, SEG, hop_limit=9, traffic_class=4, flow_label=0x12345)
    assert offloaded.complete() == plain == link_packet_bytes(offloaded)
    assert len(offloaded) == len(plain)
    assert completed(PartialChecksum(offloaded.header + offloaded.payload)) == plain


def test_ipv6_super_segment_is_tcpv6_and_cut_as_gso_cuts() -> None:
    seg = replace(SEG, flags=TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN | TcpFlags.CWR)
    offloaded = OffloadedPacket.from_segment6(A6, B6, seg, gso_size=MSS6, flow_label=7)
    assert offloaded.payload is seg.payload
    hdr = VirtioNetHdr.parse(offloaded.virtio_header)
    assert (hdr.gso_type, hdr.gso_size, hdr.hdr_len, hdr.csum_start, hdr.csum_offset) == (
        GsoType.TCPV6, MSS6, 72, 40, 16)
    pieces = offloaded.segments()
    assert len(pieces) == -(-len(seg.payload) // MSS6)
    delivered = b""
    for i, raw in enumerate(pieces):
        ip, parsed = parse_tcp_packet(raw)  # checksum verified over the IPv6 pseudo-header
        last = i == len(pieces) - 1
        assert (ip.src, ip.dst, ip.flow_label) == (A6, B6, 7)
        assert parsed.seq == seg.seq + len(delivered)
        assert len(parsed.payload) == (len(seg.payload) - MSS6 * i if last else MSS6)
        assert bool(parsed.flags & TcpFlags.FIN) == bool(parsed.flags & TcpFlags.PSH) == last
        assert bool(parsed.flags & TcpFlags.CWR) == (i == 0)
        delivered += parsed.payload
    assert delivered == seg.payload
