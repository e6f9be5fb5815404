"""One call per packet: IPv4 or IPv6, carrying TCP or an ICMP / ICMPv6 echo or error.

``parse_packet`` (or one of the typed helpers) decodes a packet of either family (by
its version nibble); all parse failures are WireError. The stack sends with
``build_tcp_packet`` / ``build_icmp_packet`` and their IPv6 twins ``build_tcp6_packet``
/ ``build_icmpv6_packet`` / ``build_icmpv6_error_packet``. ``build_icmp_error_packet``
makes the ICMP error a router would send about one of our packets (for tests).
"""

from __future__ import annotations

from .checksum import Address
from .errors import WireError
from .icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_error_message, icmp_type
from .icmpv6 import (
    ICMPV6_ERROR_TYPES,
    Icmpv6Echo,
    Icmpv6Error,
    Icmpv6Type,
    icmpv6_error_message,
    icmpv6_type,
)
from .ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Packet, ipv4_header
from .ipv6 import IPPROTO_ICMPV6, IPv6Packet, ipv6_header
from .tcp import TcpSegment

IPPacket = IPv4Packet | IPv6Packet
Message = TcpSegment | IcmpEcho | IcmpError | Icmpv6Echo | Icmpv6Error


def build_tcp_packet(
    src: Address,
    dst: Address,
    seg: TcpSegment,
    *,
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
) -> bytes:
    """An IPv4 packet (DF set) carrying ``seg`` from ``src`` to ``dst`` (addresses or ints);
    ``ttl`` and ``tos`` (the DiffServ byte) are the connection's (RFC 9293 3.9.1), the ECN
    bits the segment's own (``seg.ecn``, RFC 3168 5)."""
    body = seg.build(src, dst)
    header = ipv4_header(
        src, dst, IPPROTO_TCP, len(body), ttl=ttl, tos=tos | seg.ecn,
        identification=identification,
    )
    return header + body


def build_icmp_packet(
    src: Address, dst: Address, echo: IcmpEcho, *, ttl: int = 64, identification: int = 0
) -> bytes:
    """An IPv4 packet (DF set) carrying an ICMP echo request or reply."""
    body = echo.build()
    header = ipv4_header(src, dst, IPPROTO_ICMP, len(body), ttl=ttl, identification=identification)
    return header + body


def build_icmp_error_packet(
    src: Address,
    dst: Address,
    kind: IcmpType,
    code: int,
    original: bytes,
    *,
    next_hop_mtu: int = 0,
    quote: int = 8,
    ttl: int = 64,
) -> bytes:
    """An IPv4 packet from ``src`` (a router, or the far host) to ``dst`` carrying the ICMP
    error ``kind``/``code`` about the IPv4 datagram ``original`` (see icmp_error_message)."""
    body = icmp_error_message(kind, code, original, next_hop_mtu=next_hop_mtu, quote=quote)
    return ipv4_header(src, dst, IPPROTO_ICMP, len(body), ttl=ttl) + body


def build_tcp6_packet(
    src: Address,
    dst: Address,
    seg: TcpSegment,
    *,
    hop_limit: int = 64,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """An IPv6 packet carrying ``seg``; the checksum covers the IPv6 pseudo-header (RFC
    8200 8.1), and ``flow_label`` is the connection's (RFC 6437). The traffic class's ECN
    bits are the segment's (``seg.ecn``, RFC 3168 5, RFC 8200 7)."""
    body = seg.build(src, dst)
    header = ipv6_header(
        src,
        dst,
        IPPROTO_TCP,
        len(body),
        hop_limit=hop_limit,
        traffic_class=traffic_class | seg.ecn,
        flow_label=flow_label,
    )
    return header + body


def build_icmpv6_packet(
    src: Address, dst: Address, echo: Icmpv6Echo, *, hop_limit: int = 64
) -> bytes:
    """An IPv6 packet carrying an ICMPv6 echo request or reply."""
    body = echo.build(src, dst)
    return ipv6_header(src, dst, IPPROTO_ICMPV6, len(body), hop_limit=hop_limit) + body


def build_icmpv6_error_packet(
    src: Address,
    dst: Address,
    kind: Icmpv6Type,
    code: int,
    original: bytes,
    *,
    value: int = 0,
    hop_limit: int = 64,
) -> bytes:
    """An IPv6 packet from ``src`` to ``dst`` carrying the ICMPv6 error ``kind``/``code``
    about the IPv6 packet ``original`` (see icmpv6_error_message)."""
    body = icmpv6_error_message(kind, code, original, src, dst, value=value)
    return ipv6_header(src, dst, IPPROTO_ICMPV6, len(body), hop_limit=hop_limit) + body


def parse_ip(data: bytes | bytearray | memoryview) -> IPPacket:
    """An IPv4 or IPv6 packet, by its version nibble; raises WireError."""
    if data and data[0] >> 4 == 6:
        return IPv6Packet.parse(data)
    return IPv4Packet.parse(data)


def parse_packet(data: bytes | bytearray | memoryview) -> tuple[IPPacket, Message]:
    """Decode an IPv4 or IPv6 packet and its TCP segment, ICMP(v6) echo or ICMP(v6) error;
    raises WireError.

    Any other protocol or ICMP type is a WireError too: this stack speaks nothing else.
    """
    ip = parse_ip(data)
    if ip.protocol == IPPROTO_TCP:
        return ip, TcpSegment.parse(ip.payload, ip.src, ip.dst, ecn=ip.ecn)
    if isinstance(ip, IPv4Packet):
        if ip.protocol == IPPROTO_ICMP:
            if icmp_type(ip.payload) in ICMP_ERROR_TYPES:
                return ip, IcmpError.parse(ip.payload)
            return ip, IcmpEcho.parse(ip.payload)
    elif ip.protocol == IPPROTO_ICMPV6:
        if icmpv6_type(ip.payload, ip.src, ip.dst) in ICMPV6_ERROR_TYPES:
            return ip, Icmpv6Error.parse(ip.payload, ip.src, ip.dst)
        return ip, Icmpv6Echo.parse(ip.payload, ip.src, ip.dst)
    raise WireError(f"IP protocol {ip.protocol} is not supported")


def parse_tcp_packet(data: bytes | bytearray | memoryview) -> tuple[IPPacket, TcpSegment]:
    """Decode an IPv4 or IPv6 packet that must carry TCP; raises WireError."""
    ip = parse_ip(data)
    if ip.protocol != IPPROTO_TCP:
        raise WireError(f"IP protocol {ip.protocol} is not TCP")
    return ip, TcpSegment.parse(ip.payload, ip.src, ip.dst, ecn=ip.ecn)


def parse_icmp_packet(data: bytes | bytearray | memoryview) -> tuple[IPv4Packet, IcmpEcho]:
    """Decode an IPv4 packet that must carry an ICMP echo; raises WireError."""
    ip = IPv4Packet.parse(data)
    if ip.protocol != IPPROTO_ICMP:
        raise WireError(f"IP protocol {ip.protocol} is not ICMP")
    return ip, IcmpEcho.parse(ip.payload)
