"""ICMPv4 (RFC 792): echo request and reply, and the error messages TCP acts on.

``icmp_type`` checks any ICMP message (length, checksum) and says which type it is, so
the stack can tell a message it does not use (RFC 1122 3.2.2 lets a host silently
discard those) from garbage. ``IcmpEcho.parse`` refuses anything but an echo request or
reply with WireError.

``IcmpError.parse`` decodes the error messages that quote the datagram that caused them
(Destination Unreachable, Source Quench, Time Exceeded, Parameter Problem): the quoted
IPv4 header and at least the first 8 bytes of its payload, which for TCP are the ports
and the sequence number (RFC 792; RFC 1812 4.3.2.3 lets routers quote more, and more is
accepted). That is all RFC 9293 3.9.2.1 needs to find the connection and, as RFC 5927
4.1 advises, to check that the quoted segment is one we could have sent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from construct import Int8ub, Int16ub, Int32ub, Struct

from ._layout import Layout
from .checksum import internet_checksum, ones_complement_sum
from .errors import WireError
from .ipv4 import IPV4_HEADER
from .seq import SeqNum

ICMP_ECHO_HEADER = Layout(
    Struct(
        "type" / Int8ub,
        "code" / Int8ub,
        "checksum" / Int16ub,
        "identifier" / Int16ub,
        "sequence" / Int16ub,
    )
)
_HDR = ICMP_ECHO_HEADER.fast


def icmp_type(data: bytes | bytearray | memoryview) -> int:
    """The type of a valid ICMP message (the IP payload); raises WireError for one that is
    shorter than the 8-byte header every type has, or whose checksum is wrong (RFC 792)."""
    n = len(data)
    if n < 8:
        raise WireError(f"ICMP message too short for a header: {n} bytes")
    if ones_complement_sum(data) != 0xFFFF:
        raise WireError("bad ICMP checksum")
    return data[0]


class IcmpType(IntEnum):
    ECHO_REPLY = 0
    DESTINATION_UNREACHABLE = 3
    SOURCE_QUENCH = 4  # deprecated by RFC 6633; TCP must ignore it (RFC 9293 MUST-55)
    ECHO_REQUEST = 8
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12


# The error types whose message quotes the offending datagram (RFC 792).
ICMP_ERROR_TYPES = frozenset(
    {
        IcmpType.DESTINATION_UNREACHABLE,
        IcmpType.SOURCE_QUENCH,
        IcmpType.TIME_EXCEEDED,
        IcmpType.PARAMETER_PROBLEM,
    }
)
FRAGMENTATION_NEEDED = 4  # Destination Unreachable code 4 carries the next-hop MTU (RFC 1191 4)

# The 8-byte error header; after it the quoted IPv4 header (ipv4.py's layout) and the
# first 8 bytes of the quoted payload (for TCP: ports and sequence number).
ICMP_ERROR_HEADER = Layout(
    Struct(
        "type" / Int8ub,
        "code" / Int8ub,
        "checksum" / Int16ub,
        "unused" / Int16ub,
        "next_hop_mtu" / Int16ub,  # RFC 1191 4: Destination Unreachable code 4 only
    )
)
QUOTED_TRANSPORT = Layout(Struct("src_port" / Int16ub, "dst_port" / Int16ub, "seq" / Int32ub))
_ERR, _QIP, _QTP = ICMP_ERROR_HEADER.fast, IPV4_HEADER.fast, QUOTED_TRANSPORT.fast


@dataclass(frozen=True, slots=True)
class IcmpEcho:
    type: IcmpType
    identifier: int
    sequence: int
    data: bytes = b""
    code: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> IcmpEcho:
        """Validate and decode an echo request or reply (the IP payload); raises WireError."""
        kind = icmp_type(data)
        if kind not in (IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY):
            raise WireError(f"ICMP type {kind} is not an echo request or reply")
        _, code, _, identifier, sequence = _HDR.unpack_from(data)
        return cls(IcmpType(kind), identifier, sequence, bytes(data[8:]), code)

    def build(self) -> bytes:
        """Header (checksum over header and data filled in) followed by the data."""
        try:
            header = _HDR.pack(self.type, self.code, 0, self.identifier, self.sequence)
        except struct.error as e:
            raise ValueError(f"cannot build ICMP echo {self!r}: {e}") from e
        checksum = internet_checksum(self.data, ones_complement_sum(header))
        return header[:2] + checksum.to_bytes(2, "big") + header[4:] + self.data

    def reply(self) -> IcmpEcho:
        """The echo reply to this request: same identifier, sequence and data (RFC 792)."""
        if self.type != IcmpType.ECHO_REQUEST:
            raise ValueError(f"only an echo request has a reply, not {self.type.name}")
        return IcmpEcho(IcmpType.ECHO_REPLY, self.identifier, self.sequence, self.data)


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error message and what it quotes of the datagram that caused it.

    `src`/`dst`/`protocol`/`original_length` come from the quoted IPv4 header (so
    `src` is us when the datagram was ours); `src_port`, `dst_port` and `seq` are the
    first 8 bytes of its payload, read as TCP reads them. `next_hop_mtu` is 0 unless
    this is Destination Unreachable code 4 from a router that follows RFC 1191.
    """

    type: IcmpType
    code: int
    src: IPv4Address
    dst: IPv4Address
    protocol: int
    src_port: int
    dst_port: int
    seq: SeqNum
    next_hop_mtu: int = 0
    original_length: int = 0  # the quoted header's total length (RFC 1191 7 uses it)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> IcmpError:
        """Validate and decode an error message (the IP payload); raises WireError."""
        kind = icmp_type(data)
        if kind not in ICMP_ERROR_TYPES:
            raise WireError(f"ICMP type {kind} is not an error that quotes a datagram")
        n = len(data)
        if n < 8 + 20:
            raise WireError(f"ICMP error too short to quote an IPv4 header: {n} bytes")
        _, code, _, _, mtu = _ERR.unpack_from(data)
        vihl, _, total, _, flags_frag, _, protocol, _, src, dst = _QIP.unpack_from(data, 8)
        if vihl >> 4 != 4:
            raise WireError(f"ICMP error quotes a version {vihl >> 4} header, not IPv4")
        hlen = (vihl & 0xF) << 2
        if hlen < 20:
            raise WireError(f"quoted IPv4 IHL {hlen >> 2} is below the minimum of 5")
        if n < 8 + hlen + 8:
            raise WireError(f"ICMP error quotes fewer than 8 bytes after the IPv4 header ({n})")
        if flags_frag & 0x1FFF:
            raise WireError("ICMP error quotes a later fragment: no transport header in it")
        src_port, dst_port, seq = _QTP.unpack_from(data, 8 + hlen)
        if kind != IcmpType.DESTINATION_UNREACHABLE or code != FRAGMENTATION_NEEDED:
            mtu = 0  # the field is unused in every other message
        return cls(
            IcmpType(kind),
            code,
            IPv4Address(src),
            IPv4Address(dst),
            protocol,
            src_port,
            dst_port,
            SeqNum(seq),
            mtu,
            total,
        )


def icmp_error_message(
    kind: IcmpType, code: int, original: bytes, *, next_hop_mtu: int = 0, quote: int = 8
) -> bytes:
    """The ICMP error a router or host would send about the IPv4 datagram `original`:
    its header and the first `quote` bytes of its payload (RFC 792 asks for 8)."""
    if kind not in ICMP_ERROR_TYPES:
        raise ValueError(f"{kind!r} is not an ICMP error type that quotes a datagram")
    hlen = (original[0] & 0xF) << 2 if original else 0
    try:
        header = _ERR.pack(kind, code, 0, 0, next_hop_mtu)
    except struct.error as e:
        raise ValueError(f"cannot build ICMP error: {e}") from e
    body = bytes(original[: hlen + quote])
    checksum = internet_checksum(body, ones_complement_sum(header))
    return header[:2] + checksum.to_bytes(2, "big") + header[4:] + body
