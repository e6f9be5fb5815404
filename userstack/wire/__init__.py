"""The wire layer: bytes <-> frozen dataclasses. construct lives here and nowhere else.

Parsing raises WireError (a ValueError) and nothing else; building raises ValueError
for fields that do not fit. See each module's docstring for what is accepted.
"""

from .addr import Endpoint
from .checksum import internet_checksum, ones_complement_sum, pseudo_header_sum
from .errors import WireError
from .icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_error_message, icmp_type
from .icmpv6 import ICMPV6_ERROR_TYPES, Icmpv6Echo, Icmpv6Error, Icmpv6Type
from .ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Flags, IPv4Packet, ipv4_header
from .ipv6 import IPPROTO_ICMPV6, ExtensionHeader, FragmentHeader, IPv6Packet, ParameterProblem
from .packet import (
    IPPacket,
    build_icmp_error_packet,
    build_icmp_packet,
    build_icmpv6_error_packet,
    build_icmpv6_packet,
    build_tcp6_packet,
    build_tcp_packet,
    parse_icmp_packet,
    parse_ip,
    parse_packet,
    parse_tcp_packet,
)
from .pcap import LINKTYPE_RAW, PcapReader, PcapWriter
from .seq import SeqNum
from .tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment

__all__ = [
    "ICMPV6_ERROR_TYPES",
    "ICMP_ERROR_TYPES",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_TCP",
    "LINKTYPE_RAW",
    "NO_OPTIONS",
    "Endpoint",
    "ExtensionHeader",
    "FragmentHeader",
    "IPPacket",
    "IPv4Flags",
    "IPv4Packet",
    "IPv6Packet",
    "IcmpEcho",
    "IcmpError",
    "IcmpType",
    "Icmpv6Echo",
    "Icmpv6Error",
    "Icmpv6Type",
    "ParameterProblem",
    "PcapReader",
    "PcapWriter",
    "SeqNum",
    "TcpFlags",
    "TcpOptions",
    "TcpSegment",
    "WireError",
    "build_icmp_error_packet",
    "build_icmp_packet",
    "build_icmpv6_error_packet",
    "build_icmpv6_packet",
    "build_tcp6_packet",
    "build_tcp_packet",
    "icmp_error_message",
    "icmp_type",
    "internet_checksum",
    "ipv4_header",
    "ones_complement_sum",
    "parse_icmp_packet",
    "parse_ip",
    "parse_packet",
    "parse_tcp_packet",
    "pseudo_header_sum",
]
