"""parse(build(x)) == x, and dpkt (an independent decoder) reads every built packet the same."""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given, settings
from wire_strategies import addresses, icmp_echoes, ipv4_packets, tcp_options, tcp_segments

from userstack.wire import (
    IcmpEcho,
    IcmpType,
    IPv4Flags,
    IPv4Packet,
    SeqNum,
    TcpFlags,
    TcpOptions,
    TcpSegment,
    build_icmp_packet,
    build_tcp_packet,
    parse_icmp_packet,
    parse_packet,
    parse_tcp_packet,
)

EXAMPLES = settings(max_examples=150, deadline=None)


@EXAMPLES
@given(tcp_options)
def test_options_round_trip(options: TcpOptions) -> None:
    raw = options.build()
    assert len(raw) % 4 == 0 and len(raw) <= 40
    assert TcpOptions.parse(raw) == options


@EXAMPLES
@given(tcp_segments, addresses, addresses)
def test_segment_round_trip(seg: TcpSegment, src: IPv4Address, dst: IPv4Address) -> None:
    assert TcpSegment.parse(seg.build(src, dst), src, dst) == seg


@EXAMPLES
@given(tcp_segments, addresses, addresses)
def test_addresses_may_be_given_as_ints(
    seg: TcpSegment, src: IPv4Address, dst: IPv4Address
) -> None:
    """The stack's hot path passes addresses as ints: the same bytes come out."""
    packet = build_tcp_packet(src, dst, seg)
    assert build_tcp_packet(int(src), int(dst), seg) == packet
    assert TcpSegment.parse(packet[20:], int(src), int(dst)) == seg


@EXAMPLES
@given(ipv4_packets)
def test_ipv4_round_trip(packet: IPv4Packet) -> None:
    assert IPv4Packet.parse(packet.build()) == packet


@EXAMPLES
@given(icmp_echoes)
def test_icmp_round_trip(echo: IcmpEcho) -> None:
    assert IcmpEcho.parse(echo.build()) == echo


def dpkt_options(raw: bytes) -> TcpOptions:
    """Map dpkt's (kind, data) list onto our TcpOptions, to compare with ours."""
    fields: dict[str, object] = {}
    unknown = []
    for kind, data in dpkt.tcp.parse_opts(raw):
        if kind == dpkt.tcp.TCP_OPT_EOL:
            break
        if kind == dpkt.tcp.TCP_OPT_NOP:
            continue
        if kind == dpkt.tcp.TCP_OPT_MSS:
            fields["mss"] = int.from_bytes(data, "big")
        elif kind == dpkt.tcp.TCP_OPT_WSCALE:
            fields["window_scale"] = data[0]
        elif kind == dpkt.tcp.TCP_OPT_SACKOK:
            fields["sack_permitted"] = True
        elif kind == dpkt.tcp.TCP_OPT_SACK:
            edges = [SeqNum(int.from_bytes(data[i : i + 4], "big")) for i in range(0, len(data), 4)]
            fields["sack_blocks"] = tuple(zip(edges[::2], edges[1::2], strict=True))
        elif kind == dpkt.tcp.TCP_OPT_TIMESTAMP:
            fields["timestamps"] = (
                int.from_bytes(data[:4], "big"),
                int.from_bytes(data[4:], "big"),
            )
        else:
            unknown.append((kind, data))
    return TcpOptions(**fields, unknown=tuple(unknown))  # type: ignore[arg-type]


@EXAMPLES
@given(tcp_segments, addresses, addresses)
def test_dpkt_decodes_tcp_packets_identically(
    seg: TcpSegment, src: IPv4Address, dst: IPv4Address
) -> None:
    raw = build_tcp_packet(src, dst, seg, ttl=33, identification=4242)
    ip = dpkt.ip.IP(raw)
    assert (ip.v, ip.hl, ip.len, ip.ttl, ip.id, ip.p) == (4, 5, len(raw), 33, 4242, 6)
    assert (ip.df, ip.mf, ip.offset) == (1, 0, 0)
    assert (IPv4Address(ip.src), IPv4Address(ip.dst)) == (src, dst)
    tcp = ip.data
    assert isinstance(tcp, dpkt.tcp.TCP)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (
        seg.src_port,
        seg.dst_port,
        seg.seq.value,
        seg.ack.value,
    )
    assert (tcp.flags, tcp.win, tcp.urp, bytes(tcp.data)) == (
        seg.flags,
        seg.window,
        seg.urgent,
        seg.payload,
    )
    assert dpkt_options(tcp.opts) == seg.options
    # Checksums: dpkt recomputes both when they are zero; it must arrive at our bytes.
    ours = (ip.sum, tcp.sum)
    ip.sum = tcp.sum = 0
    assert bytes(ip) == raw, ours
    assert parse_tcp_packet(raw) == parse_packet(raw)


@EXAMPLES
@given(icmp_echoes, addresses, addresses)
def test_dpkt_decodes_icmp_packets_identically(
    echo: IcmpEcho, src: IPv4Address, dst: IPv4Address
) -> None:
    raw = build_icmp_packet(src, dst, echo)
    ip = dpkt.ip.IP(raw)
    icmp = ip.data
    assert isinstance(icmp, dpkt.icmp.ICMP)
    assert (icmp.type, icmp.code) == (echo.type, echo.code)
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (
        echo.identifier,
        echo.sequence,
        echo.data,
    )
    ip.sum = icmp.sum = 0
    assert bytes(ip) == raw
    header, parsed = parse_icmp_packet(raw)
    assert parsed == echo and header.src == src and header.dst == dst


@EXAMPLES
@given(ipv4_packets)
def test_dpkt_decodes_ipv4_headers_identically(packet: IPv4Packet) -> None:
    raw = packet.build()
    ip = dpkt.ip.IP(raw)
    assert (ip.tos, ip.id, ip.ttl, ip.p, ip.opts) == (
        packet.tos,
        packet.identification,
        packet.ttl,
        packet.protocol,
        packet.options,
    )
    assert (ip.rf, ip.df, ip.mf) == (
        bool(packet.flags & IPv4Flags.RESERVED),
        bool(packet.flags & IPv4Flags.DF),
        False,
    )
    assert dpkt.in_cksum(raw[: 20 + len(packet.options)]) == 0


def test_parse_accepts_memoryview_and_bytearray() -> None:
    seg = TcpSegment(1, 2, SeqNum(3), SeqNum(4), TcpFlags.ACK, 5, TcpOptions(mss=1400), b"xyz")
    src, dst = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    raw = build_tcp_packet(src, dst, seg)
    for view in (memoryview(raw), bytearray(raw)):
        ip, parsed = parse_tcp_packet(view)
        assert parsed == seg and type(parsed.payload) is bytes and type(ip.payload) is bytes


def test_echo_reply() -> None:
    request = IcmpEcho(IcmpType.ECHO_REQUEST, 7, 9, b"ping")
    reply = request.reply()
    assert reply == IcmpEcho(IcmpType.ECHO_REPLY, 7, 9, b"ping")
    with pytest.raises(ValueError, match="only an echo request"):
        reply.reply()
