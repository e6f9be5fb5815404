"""IPv4 packets (RFC 791) as a frozen dataclass.

A fragment (MF set or a non-zero fragment offset) parses like any packet, its payload
being that fragment's data; ``is_fragment`` tells the stack to hand it to the
reassembler (userstack/stack/reassembly.py, RFC 791 3.2, RFC 815), which rebuilds the
datagram and parses it again. This stack itself never fragments: it sets DF on
everything it sends and its MSS fits the link MTU.

The total length must match the bytes given exactly: a TUN read is exactly one packet,
so anything else is a truncated or garbled frame, not link-layer padding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address

from construct import Int8ub, Int16ub, Int32ub, Struct

from ._layout import Layout
from .checksum import Address, internet_checksum
from .errors import WireError

IPPROTO_ICMP = 1
IPPROTO_TCP = 6

IPV4_HEADER = Layout(
    Struct(
        "version_ihl" / Int8ub,  # version (4 bits) and IHL in 32-bit words (4 bits)
        "tos" / Int8ub,
        "total_length" / Int16ub,
        "identification" / Int16ub,
        "flags_fragment" / Int16ub,  # flags (3 bits) and fragment offset in 8-octet units
        "ttl" / Int8ub,
        "protocol" / Int8ub,
        "checksum" / Int16ub,
        "src" / Int32ub,
        "dst" / Int32ub,
    )
)
_HDR = IPV4_HEADER.fast
_MAX_OPTIONS = 40


class IPv4Flags(IntFlag):
    """The three flag bits of RFC 791 3.1 (as the top bits of the 16-bit flags/offset word)."""

    MF = 0x1  # more fragments
    DF = 0x2  # don't fragment
    RESERVED = 0x4  # must be zero; kept so a round trip loses nothing


_FLAGS = tuple(IPv4Flags(i) for i in range(8))


def ipv4_header(
    src: Address,
    dst: Address,
    protocol: int,
    payload_length: int,
    *,
    ttl: int = 64,
    identification: int = 0,
    tos: int = 0,
    flags: IPv4Flags = IPv4Flags.DF,
    fragment_offset: int = 0,
    options: bytes = b"",
) -> bytes:
    """The IPv4 header (with checksum) for a payload of ``payload_length`` bytes."""
    if len(options) % 4 or len(options) > _MAX_OPTIONS:
        raise ValueError(f"IPv4 options must be a multiple of 4 bytes, at most 40: {len(options)}")
    if not 0 <= fragment_offset < 0x2000 or not 0 <= flags < 8:
        raise ValueError(f"bad IPv4 flags/fragment offset: {flags!r}, {fragment_offset}")
    hlen = 20 + len(options)
    vihl, total, flags_fragment = 0x40 | hlen >> 2, hlen + payload_length, int(flags) << 13
    flags_fragment |= fragment_offset
    src, dst = int(src), int(dst)
    # The header's words, summed from the fields (see checksum.py), then the options.
    words = (vihl << 8) + tos + total + identification + flags_fragment
    words += (ttl << 8) + protocol + src + dst
    checksum = internet_checksum(options, words)
    try:
        raw = _HDR.pack(
            vihl, tos, total, identification, flags_fragment, ttl, protocol, checksum, src, dst
        )
    except struct.error as e:  # a field out of range is local misuse
        raise ValueError(f"cannot build IPv4 header: {e}") from e
    return raw + options if options else raw


@dataclass(frozen=True, slots=True)
class IPv4Packet:
    src: IPv4Address
    dst: IPv4Address
    protocol: int
    payload: bytes = b""
    ttl: int = 64
    tos: int = 0
    identification: int = 0
    flags: IPv4Flags = IPv4Flags.DF
    fragment_offset: int = 0  # in 8-octet units, as in the header
    options: bytes = b""  # raw, including any padding (a multiple of 4 bytes)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, *, view: bool = False) -> IPv4Packet:
        """Validate and decode one IPv4 packet; raises WireError and nothing else.

        With `view`, the payload is a memoryview of `data`, not a copy: the stack's hot
        path, which parses the TCP segment out of it at once (a 64 KB super-segment is
        then copied once, into the segment's payload, instead of twice)."""
        n = len(data)
        if n < 20:
            raise WireError(f"IPv4 packet too short for a header: {n} bytes")
        vihl, tos, total, ident, flags_frag, ttl, proto, checksum, src, dst = _HDR.unpack_from(data)
        if vihl >> 4 != 4:
            raise WireError(f"not IPv4: version {vihl >> 4}")
        hlen = (vihl & 0xF) << 2
        if hlen < 20:
            raise WireError(f"IPv4 IHL {hlen >> 2} is below the minimum of 5")
        if hlen > n:
            raise WireError(f"IPv4 header length {hlen} runs past the {n} bytes received")
        if total != n:
            raise WireError(f"IPv4 total length {total} does not match the {n} bytes received")
        # The words of the header, checksum included, from the fields (see checksum.py);
        # valid when their one's complement sum is 0xFFFF, i.e. a multiple of 0xFFFF here.
        words = (vihl << 8) + tos + total + ident + flags_frag + (ttl << 8) + proto
        words += checksum + src + dst
        if hlen > 20:
            words += int.from_bytes(data[20:hlen], "big")
        if words % 0xFFFF:
            raise WireError("bad IPv4 header checksum")
        return cls(
            IPv4Address(src),
            IPv4Address(dst),
            proto,
            memoryview(data)[hlen:] if view else bytes(data[hlen:]),  # type: ignore[arg-type]
            ttl,
            tos,
            ident,
            _FLAGS[flags_frag >> 13],
            flags_frag & 0x1FFF,
            bytes(data[20:hlen]),
        )

    @property
    def ecn(self) -> int:
        """The ECN field: the low two bits of the TOS byte (RFC 3168 5)."""
        return self.tos & 0b11

    @property
    def is_fragment(self) -> bool:
        """MF set or a non-zero offset: one piece of a datagram to reassemble (RFC 791)."""
        return bool(self.flags & IPv4Flags.MF or self.fragment_offset)

    def build(self) -> bytes:
        """Header (checksum filled in) followed by the payload."""
        return (
            ipv4_header(
                self.src,
                self.dst,
                self.protocol,
                len(self.payload),
                ttl=self.ttl,
                identification=self.identification,
                tos=self.tos,
                flags=self.flags,
                fragment_offset=self.fragment_offset,
                options=self.options,
            )
            + self.payload
        )


class Ecn(IntEnum):
    """The ECN field, the low two bits of the TOS byte (RFC 3168 5)."""

    NOT_ECT = 0b00
    ECT_1 = 0b01
    ECT_0 = 0b10
    CE = 0b11  # Congestion Experienced: set by a router instead of dropping


def ecn_of(packet: bytes | bytearray | memoryview) -> Ecn:
    """The ECN codepoint of a raw IPv4 packet (at least a whole header long)."""
    return Ecn(packet[1] & 0b11)


def with_ecn(packet: bytes, ecn: Ecn) -> bytes:
    """The same IPv4 packet with another ECN codepoint, its header checksum recomputed
    (what a router marking CE does, RFC 3168 5). Raises WireError on a short header."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or len(packet) < (packet[0] & 0xF) * 4:
        raise WireError("not a whole IPv4 header")
    hlen = (packet[0] & 0xF) * 4
    header = bytearray(packet[:hlen])
    header[1] = (header[1] & ~0b11) | ecn
    header[10:12] = b"\0\0"
    header[10:12] = internet_checksum(header).to_bytes(2, "big")
    return bytes(header) + packet[hlen:]
