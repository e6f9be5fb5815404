"""One call per packet for the stack: IPv4 + TCP, IPv4 + ICMP echo or error.

The stack parses every arriving packet with ``parse_packet`` (or one of the typed
helpers) and sends with ``build_tcp_packet`` / ``build_icmp_packet``; all parse
failures are WireError, which the stack drops and counts. ``build_icmp_error_packet``
makes the ICMP error a router would send about one of our packets (for tests).
"""

from __future__ import annotations

from .checksum import Address
from .errors import WireError
from .icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_error_message, icmp_type
from .ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Packet, ipv4_header
from .tcp import TcpSegment


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
    ``ttl`` and ``tos`` (the DiffServ/ECN byte) are the connection's (RFC 9293 3.9.1)."""
    body = seg.build(src, dst)
    header = ipv4_header(
        src, dst, IPPROTO_TCP, len(body), ttl=ttl, tos=tos, identification=identification
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


def parse_packet(
    data: bytes | bytearray | memoryview,
) -> tuple[IPv4Packet, TcpSegment | IcmpEcho | IcmpError]:
    """Decode an IPv4 packet and its TCP segment, ICMP echo or ICMP error; raises WireError.

    Any other protocol or ICMP type is a WireError too: this stack speaks nothing else.
    """
    ip = IPv4Packet.parse(data)
    if ip.protocol == IPPROTO_TCP:
        return ip, TcpSegment.parse(ip.payload, ip.src, ip.dst)
    if ip.protocol == IPPROTO_ICMP:
        if icmp_type(ip.payload) in ICMP_ERROR_TYPES:
            return ip, IcmpError.parse(ip.payload)
        return ip, IcmpEcho.parse(ip.payload)
    raise WireError(f"IP protocol {ip.protocol} is not supported")


def parse_tcp_packet(data: bytes | bytearray | memoryview) -> tuple[IPv4Packet, TcpSegment]:
    """Decode an IPv4 packet that must carry TCP; raises WireError."""
    ip = IPv4Packet.parse(data)
    if ip.protocol != IPPROTO_TCP:
        raise WireError(f"IP protocol {ip.protocol} is not TCP")
    return ip, TcpSegment.parse(ip.payload, ip.src, ip.dst)


def parse_icmp_packet(data: bytes | bytearray | memoryview) -> tuple[IPv4Packet, IcmpEcho]:
    """Decode an IPv4 packet that must carry an ICMP echo; raises WireError."""
    ip = IPv4Packet.parse(data)
    if ip.protocol != IPPROTO_ICMP:
        raise WireError(f"IP protocol {ip.protocol} is not ICMP")
    return ip, IcmpEcho.parse(ip.payload)
