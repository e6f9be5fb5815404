"""ICMPv6 (RFC 4443): echo request and reply, and the four error messages.

Unlike ICMPv4, the ICMPv6 checksum covers the IPv6 pseudo-header (RFC 4443 2.3, RFC 8200
8.1), so parsing takes the packet's source and destination. ``icmpv6_type`` checks any
message (length, checksum) and says which type it is, so the stack can tell a message it
does not speak (neighbour discovery, MLD: RFC 4443 2.4 (b) lets it discard those) from
garbage.

``Icmpv6Error.parse`` decodes Destination Unreachable (3.1), Packet Too Big (3.2, with
the MTU RFC 8201 path MTU discovery needs), Time Exceeded (3.3) and Parameter Problem
(3.4, with its pointer). Each quotes "as much of the invoking packet as possible" (2.4
(c)); the quoted extension headers are walked to the upper-layer header, whose first 8
bytes, for TCP the ports and the sequence number, are what RFC 9293 3.9.2.1 and RFC 5927
4.1 need. ``icmpv6_error_message`` builds one, quoting at most what keeps the error
within the minimum MTU of 1280 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv6Address

from construct import Int8ub, Int16ub, Int32ub, Struct

from ._layout import Layout
from .checksum import Address, internet_checksum, ones_complement_sum, pseudo_header_sum
from .errors import WireError
from .ipv6 import HEADER_LENGTH, IPPROTO_ICMPV6, IPV6_HEADER, MIN_MTU, walk_chain
from .seq import SeqNum


class Icmpv6Type(IntEnum):
    DESTINATION_UNREACHABLE = 1
    PACKET_TOO_BIG = 2
    TIME_EXCEEDED = 3
    PARAMETER_PROBLEM = 4
    ECHO_REQUEST = 128
    ECHO_REPLY = 129


ICMPV6_ERROR_TYPES = frozenset(
    {
        Icmpv6Type.DESTINATION_UNREACHABLE,
        Icmpv6Type.PACKET_TOO_BIG,
        Icmpv6Type.TIME_EXCEEDED,
        Icmpv6Type.PARAMETER_PROBLEM,
    }
)
# Informational types this stack does not speak, sent on any link the kernel brings up:
# MLD (RFC 2710, RFC 3810: 130-132, 143) and neighbour discovery (RFC 4861: 133-137).
LINK_CHATTER_TYPES = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})

# Time Exceeded codes (RFC 4443 3.3) and Parameter Problem codes (3.4, RFC 7112 5).
HOP_LIMIT_EXCEEDED = 0
REASSEMBLY_TIME_EXCEEDED = 1
ERRONEOUS_HEADER_FIELD = 0
UNRECOGNIZED_NEXT_HEADER = 1
UNRECOGNIZED_OPTION = 2
INCOMPLETE_HEADER_CHAIN = 3

ICMPV6_ECHO_HEADER = Layout(
    Struct(
        "type" / Int8ub,
        "code" / Int8ub,
        "checksum" / Int16ub,
        "identifier" / Int16ub,
        "sequence" / Int16ub,
    )
)
ICMPV6_ERROR_HEADER = Layout(
    Struct(
        "type" / Int8ub,
        "code" / Int8ub,
        "checksum" / Int16ub,
        "value" / Int32ub,  # unused; the MTU (Packet Too Big); the pointer (Parameter Problem)
    )
)
_ECHO, _ERR, _QIP = ICMPV6_ECHO_HEADER.fast, ICMPV6_ERROR_HEADER.fast, IPV6_HEADER.fast
_QTP = struct.Struct(">HHI")  # the first 8 bytes of the quoted TCP header
MAX_QUOTE = MIN_MTU - HEADER_LENGTH - 8  # RFC 4443 2.4 (c)


def _sum(data: bytes | bytearray | memoryview, src: Address, dst: Address) -> int:
    return ones_complement_sum(data, pseudo_header_sum(src, dst, IPPROTO_ICMPV6, len(data)))


def icmpv6_type(data: bytes | bytearray | memoryview, src: Address, dst: Address) -> int:
    """The type of a valid ICMPv6 message (the upper-layer data of a packet from ``src`` to
    ``dst``); raises WireError if it is shorter than 4 bytes or its checksum is wrong."""
    n = len(data)
    if n < 4:
        raise WireError(f"ICMPv6 message too short for a header: {n} bytes")
    if _sum(data, src, dst) != 0xFFFF:
        raise WireError("bad ICMPv6 checksum")
    return data[0]


def _with_checksum(header: bytes, body: bytes, src: Address, dst: Address) -> bytes:
    words = pseudo_header_sum(src, dst, IPPROTO_ICMPV6, len(header) + len(body))
    checksum = internet_checksum(body, ones_complement_sum(header, words))
    return header[:2] + checksum.to_bytes(2, "big") + header[4:] + body


@dataclass(frozen=True, slots=True)
class Icmpv6Echo:
    type: Icmpv6Type
    identifier: int
    sequence: int
    data: bytes = b""
    code: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, src: Address, dst: Address) -> Icmpv6Echo:
        """Validate and decode an echo request or reply; raises WireError."""
        kind = icmpv6_type(data, src, dst)
        if kind not in (Icmpv6Type.ECHO_REQUEST, Icmpv6Type.ECHO_REPLY):
            raise WireError(f"ICMPv6 type {kind} is not an echo request or reply")
        if len(data) < 8:
            raise WireError(f"ICMPv6 echo too short: {len(data)} bytes")
        _, code, _, identifier, sequence = _ECHO.unpack_from(data)
        return cls(Icmpv6Type(kind), identifier, sequence, bytes(data[8:]), code)

    def build(self, src: Address, dst: Address) -> bytes:
        """The message from ``src`` to ``dst``, checksum (with the pseudo-header) filled in."""
        try:
            header = _ECHO.pack(self.type, self.code, 0, self.identifier, self.sequence)
        except struct.error as e:
            raise ValueError(f"cannot build ICMPv6 echo {self!r}: {e}") from e
        return _with_checksum(header, self.data, src, dst)

    def reply(self) -> Icmpv6Echo:
        """The echo reply: same identifier, sequence and data (RFC 4443 4.2)."""
        if self.type != Icmpv6Type.ECHO_REQUEST:
            raise ValueError(f"only an echo request has a reply, not {self.type.name}")
        return Icmpv6Echo(Icmpv6Type.ECHO_REPLY, self.identifier, self.sequence, self.data)


@dataclass(frozen=True, slots=True)
class Icmpv6Error:
    """An ICMPv6 error and what it quotes of the packet that caused it.

    `src`/`dst` come from the quoted IPv6 header (`src` is us when the packet was ours);
    `protocol` is the quoted upper-layer protocol, found by walking the quoted extension
    headers; `src_port`, `dst_port`, `seq` are its first 8 bytes, read as TCP reads them.
    `mtu` is the Packet Too Big MTU, `pointer` the Parameter Problem pointer (0 otherwise).
    """

    type: Icmpv6Type
    code: int
    src: IPv6Address
    dst: IPv6Address
    protocol: int
    src_port: int
    dst_port: int
    seq: SeqNum
    mtu: int = 0
    pointer: int = 0
    original_length: int = 0  # the quoted packet's length, from its payload length field

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, src: Address, dst: Address) -> Icmpv6Error:
        """Validate and decode an error message; raises WireError."""
        kind = icmpv6_type(data, src, dst)
        if kind not in ICMPV6_ERROR_TYPES:
            raise WireError(f"ICMPv6 type {kind} is not an error message")
        n = len(data)
        if n < 8 + HEADER_LENGTH:
            raise WireError(f"ICMPv6 error too short to quote an IPv6 header: {n} bytes")
        _, code, _, value = _ERR.unpack_from(data)
        word, length, next_header, _, sh, sl, dh, dl = _QIP.unpack_from(data, 8)
        if word >> 28 != 6:
            raise WireError(f"ICMPv6 error quotes a version {word >> 28} header, not IPv6")
        quoted = memoryview(data)[8:]
        try:
            chain = walk_chain(quoted, next_header, HEADER_LENGTH, quoted=True)
        except WireError as e:
            raise WireError(f"ICMPv6 error quotes a broken header chain: {e}") from None
        if chain.fragment is not None and chain.fragment.offset:
            raise WireError("ICMPv6 error quotes a later fragment: no transport header in it")
        if len(quoted) < chain.payload_offset + 8:
            raise WireError("ICMPv6 error quotes fewer than 8 bytes of the upper-layer header")
        src_port, dst_port, seq = _QTP.unpack_from(quoted, chain.payload_offset)
        return cls(
            Icmpv6Type(kind),
            code,
            IPv6Address(sh << 64 | sl),
            IPv6Address(dh << 64 | dl),
            chain.next_header,
            src_port,
            dst_port,
            SeqNum(seq),
            value if kind == Icmpv6Type.PACKET_TOO_BIG else 0,
            value if kind == Icmpv6Type.PARAMETER_PROBLEM else 0,
            HEADER_LENGTH + length,
        )


def icmpv6_error_message(
    kind: Icmpv6Type, code: int, original: bytes, src: Address, dst: Address, *, value: int = 0
) -> bytes:
    """The ICMPv6 error from ``src`` to ``dst`` about the packet ``original``, quoting as
    much of it as fits in 1280 bytes (RFC 4443 2.4 (c)); ``value`` is the MTU of a Packet
    Too Big or the pointer of a Parameter Problem."""
    if kind not in ICMPV6_ERROR_TYPES:
        raise ValueError(f"{kind!r} is not an ICMPv6 error type")
    try:
        header = _ERR.pack(kind, code, 0, value)
    except struct.error as e:
        raise ValueError(f"cannot build ICMPv6 error: {e}") from e
    return _with_checksum(header, bytes(original[:MAX_QUOTE]), src, dst)
