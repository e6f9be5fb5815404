"""IPv6 packets (RFC 8200) as a frozen dataclass, with the extension-header chain walked.

``IPv6Packet.parse`` checks the fixed header (version 6, a payload length that matches
the bytes given: a TUN read is exactly one packet) and walks the extension headers this
stack knows (RFC 8200 4): hop-by-hop options (only right after the fixed header, 4.3),
routing (4.4), fragment (4.5) and destination options (4.6). It stops at the first
Next Header value that is not one of those: that is the upper-layer protocol, and
whether the stack speaks it is the stack's business (it answers an unknown one with a
Parameter Problem, code 1, pointing at ``next_header_offset``; RFC 8200 4).

What the RFC says to answer with an ICMPv6 Parameter Problem raises
``ParameterProblem`` (a WireError that carries the code and the pointer), so the stack
can send it; everything else malformed is a plain WireError (dropped silently):

- a hop-by-hop header anywhere but first (code 1, RFC 8200 4.1);
- an option whose type's two high bits say "discard and send" (code 2, RFC 8200 4.2);
- a routing header with Segments Left non-zero (code 0, pointing at the Routing Type):
  a host forwards nothing, so every type is "unrecognized" to it (RFC 8200 4.4), type 0
  included, as RFC 5095 3 demands; with Segments Left zero the header is ignored.

A fragment header with a non-zero offset or the M flag ends the walk: the rest is the
fragmentable part, for the stack's reassembler (userstack/stack/reassembly.py), which
rebuilds the whole packet and parses it again. An atomic fragment (offset 0, M clear) is
processed as the unfragmented packet it is (RFC 6946 4).

Jumbograms (RFC 2675, payload length 0) are refused: no TUN carries one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from construct import Int8ub, Int16ub, Int32ub, Int64ub, Struct

from ._layout import Layout
from .errors import WireError
from .ipv4 import Ecn

IPPROTO_HOPOPTS = 0
IPPROTO_TCP = 6
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59  # No Next Header (RFC 8200 4.7)
IPPROTO_DSTOPTS = 60

IPV6_HEADER = Layout(
    Struct(
        "version_class_flow" / Int32ub,  # version (4 bits), traffic class (8), flow label (20)
        "payload_length" / Int16ub,
        "next_header" / Int8ub,
        "hop_limit" / Int8ub,
        "src_high" / Int64ub,  # the 128-bit addresses as two 64-bit halves each
        "src_low" / Int64ub,
        "dst_high" / Int64ub,
        "dst_low" / Int64ub,
    )
)
FRAGMENT_HEADER = Layout(
    Struct(
        "next_header" / Int8ub,
        "reserved" / Int8ub,
        "offset_flags" / Int16ub,  # fragment offset in 8-octet units (13 bits), res (2), M (1)
        "identification" / Int32ub,
    )
)
_HDR, _FRAG = IPV6_HEADER.fast, FRAGMENT_HEADER.fast
_LOW64 = (1 << 64) - 1
HEADER_LENGTH = 40
MIN_MTU = 1280  # RFC 8200 5: every IPv6 link carries packets this big

# RFC 7112 5: the first fragment must hold the whole header chain and the upper-layer
# header; for the protocols this stack speaks, "the header" is this many bytes.
UPPER_LAYER_HEADER = {IPPROTO_TCP: 20, IPPROTO_ICMPV6: 4, IPPROTO_NONE: 0}

_OPTIONS_HEADERS = frozenset({IPPROTO_HOPOPTS, IPPROTO_DSTOPTS})
_EXTENSION_HEADERS = frozenset(
    {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS}
)


class ParameterProblem(WireError):
    """A packet RFC 8200 says to discard *and* answer with an ICMPv6 Parameter Problem
    (RFC 4443 3.4): ``code`` 0 (erroneous header field), 1 (unrecognized Next Header) or
    2 (unrecognized option); ``pointer`` is the offset of the offending octet from the
    start of the packet."""

    def __init__(self, message: str, code: int, pointer: int) -> None:
        super().__init__(message)
        self.code = code
        self.pointer = pointer


@dataclass(frozen=True, slots=True)
class ExtensionHeader:
    """A hop-by-hop, routing or destination options header, kept raw: ``data`` is what
    follows its Next Header and Hdr Ext Len octets (6 + 8n bytes, RFC 8200 4.3)."""

    kind: int  # IPPROTO_HOPOPTS, IPPROTO_ROUTING or IPPROTO_DSTOPTS
    data: bytes = b"\x01\x04\0\0\0\0"  # for options headers: one PadN option (RFC 8200 4.2)

    def build(self, next_header: int) -> bytes:
        n = len(self.data)
        if n < 6 or (n - 6) % 8 or n > 6 + 8 * 255:
            raise ValueError(f"extension header data must be 6 + 8n bytes, not {n}")
        return bytes((next_header, (n - 6) >> 3)) + self.data


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """The fragment header (RFC 8200 4.5): where this fragment's data goes in the original
    packet's fragmentable part, and whether more follow."""

    identification: int
    offset: int = 0  # in 8-octet units, as in the header
    more: bool = False  # the M flag

    @property
    def atomic(self) -> bool:
        """Offset 0 and M clear: the whole packet in one "fragment" (RFC 6946)."""
        return not self.offset and not self.more

    def build(self, next_header: int) -> bytes:
        if not 0 <= self.offset < 0x2000:
            raise ValueError(f"fragment offset out of range: {self.offset}")
        try:
            return _FRAG.pack(next_header, 0, self.offset << 3 | self.more, self.identification)
        except struct.error as e:
            raise ValueError(f"cannot build fragment header {self!r}: {e}") from e


Header = ExtensionHeader | FragmentHeader


def _check_options(data: bytes | memoryview, at: int, dst_multicast: bool) -> None:
    """Walk the TLV options of a hop-by-hop or destination options header (RFC 8200 4.2);
    ``data`` is the header from its first octet, ``at`` its offset in the packet."""
    i, n = 2, len(data)
    while i < n:
        kind = data[i]
        if kind == 0:  # Pad1
            i += 1
            continue
        if i + 1 >= n or i + 2 + data[i + 1] > n:
            raise WireError(f"IPv6 option type {kind} overruns its header")
        action = kind >> 6
        if kind != 1 and action:  # not PadN, and the type's high bits say what to do
            if action == 1:
                raise WireError(f"IPv6 option type {kind:#x}: discard (RFC 8200 4.2)")
            if action == 2 or not dst_multicast:
                raise ParameterProblem(f"unrecognized IPv6 option type {kind:#x}", 2, at + i)
            raise WireError(f"IPv6 option type {kind:#x} to a multicast address: discard")
        i += 2 + data[i + 1]


@dataclass(frozen=True, slots=True)
class Chain:
    """Where a walk of the extension-header chain ended."""

    headers: tuple[Header, ...]
    next_header: int  # the upper-layer protocol, or the fragment header's Next Header
    next_header_offset: int  # offset in the packet of the octet that names `next_header`
    payload_offset: int  # where the upper-layer data (or the fragmentable part) starts
    fragment: FragmentHeader | None  # a non-atomic fragment header: the walk stopped there


def walk_chain(
    data: bytes | memoryview,
    next_header: int,
    at: int,
    *,
    nh_offset: int = 6,
    dst_multicast: bool = False,
    quoted: bool = False,
) -> Chain:
    """Walk the extension headers of ``data`` from offset ``at``; the first is of type
    ``next_header``, named by the octet at ``nh_offset`` (6: the fixed header's, and only
    then may a hop-by-hop header come). Raises WireError / ParameterProblem as the module
    docstring says; a ``quoted`` packet (inside an ICMPv6 error) is only walked, its
    options and routing headers are not ours to judge."""
    headers: list[Header] = []
    hop_by_hop_allowed = nh_offset == 6 or quoted
    n = len(data)
    while next_header in _EXTENSION_HEADERS:
        if n < at + 8:
            raise WireError(f"IPv6 extension header {next_header} overruns the packet")
        if next_header == IPPROTO_FRAGMENT:
            following, _, offset_flags, ident = _FRAG.unpack_from(data, at)
            fragment = FragmentHeader(ident, offset_flags >> 3, bool(offset_flags & 1))
            headers.append(fragment)
            nh_offset, at, next_header = at, at + 8, following
            if not fragment.atomic:
                return Chain(tuple(headers), next_header, nh_offset, at, fragment)
            continue
        if next_header == IPPROTO_HOPOPTS and (headers or not hop_by_hop_allowed):
            raise ParameterProblem("hop-by-hop options not first (RFC 8200 4.1)", 1, nh_offset)
        end = at + ((data[at + 1] + 1) << 3)
        if end > n:
            raise WireError(f"IPv6 extension header {next_header} overruns the packet")
        raw = data[at:end]
        if quoted:
            pass
        elif next_header in _OPTIONS_HEADERS:
            _check_options(raw, at, dst_multicast)
        elif raw[3]:  # Segments Left: we would have to forward it (RFC 8200 4.4, RFC 5095 3)
            raise ParameterProblem(f"routing header type {raw[2]} to a host", 0, at + 2)
        headers.append(ExtensionHeader(next_header, bytes(raw[2:])))
        nh_offset, at, next_header = at, end, raw[0]
    return Chain(tuple(headers), next_header, nh_offset, at, None)


def upper_layer_header_present(data: bytes | memoryview, next_header: int) -> bool:
    """RFC 7112 5: does ``data`` (a first fragment's fragmentable part, whose first header
    is ``next_header``) hold the rest of the header chain and the upper-layer header?"""
    try:
        chain = walk_chain(data, next_header, 0, nh_offset=-1)
    except WireError:
        return False
    if chain.fragment is not None:
        return False  # a second fragment header in the chain
    return len(data) - chain.payload_offset >= UPPER_LAYER_HEADER.get(chain.next_header, 1)


@dataclass(frozen=True, slots=True)
class IPv6Packet:
    src: IPv6Address
    dst: IPv6Address
    next_header: int  # the upper-layer protocol (or, in a fragment, what the fragment holds)
    payload: bytes = b""  # the upper-layer data (in a fragment: this fragment's data)
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0  # RFC 6437: 20 bits, the same for every packet of one flow
    headers: tuple[Header, ...] = ()  # the extension headers, in order

    @property
    def protocol(self) -> int:
        """The upper-layer protocol, under the name IPv4Packet uses for it."""
        return self.next_header

    @property
    def ecn(self) -> int:
        """The ECN field: the low two bits of the traffic class (RFC 3168 5, RFC 8200 7)."""
        return self.traffic_class & 0b11

    @property
    def fragment(self) -> FragmentHeader | None:
        """The fragment header of a packet that must be reassembled, or None."""
        last = self.headers[-1] if self.headers else None
        return last if isinstance(last, FragmentHeader) and not last.atomic else None

    @property
    def next_header_offset(self) -> int:
        """The offset of the octet naming the upper-layer protocol (the pointer of a
        Parameter Problem, code 1, about it; RFC 4443 3.4)."""
        offset = 6
        at = HEADER_LENGTH
        for header in self.headers:
            offset = at
            at += 8 if isinstance(header, FragmentHeader) else 2 + len(header.data)
        return offset

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> IPv6Packet:
        """Validate and decode one IPv6 packet; raises WireError (or its ParameterProblem)
        and nothing else."""
        n = len(data)
        if n < HEADER_LENGTH:
            raise WireError(f"IPv6 packet too short for a header: {n} bytes")
        word, length, next_header, hop_limit, sh, sl, dh, dl = _HDR.unpack_from(data)
        if word >> 28 != 6:
            raise WireError(f"not IPv6: version {word >> 28}")
        if length == 0 and n > HEADER_LENGTH and next_header == IPPROTO_HOPOPTS:
            raise WireError("IPv6 jumbograms (RFC 2675) are not supported")
        if length != n - HEADER_LENGTH:
            raise WireError(f"IPv6 payload length {length} does not match the {n} bytes received")
        dst = dh << 64 | dl
        chain = walk_chain(data, next_header, HEADER_LENGTH, dst_multicast=dh >> 56 == 0xFF)
        return cls(
            IPv6Address(sh << 64 | sl),
            IPv6Address(dst),
            chain.next_header,
            bytes(data[chain.payload_offset :]),
            hop_limit,
            (word >> 20) & 0xFF,
            word & 0xFFFFF,
            chain.headers,
        )

    def build(self) -> bytes:
        """The fixed header, the extension headers (each naming the next), the payload."""
        kinds = [
            h.kind if isinstance(h, ExtensionHeader) else IPPROTO_FRAGMENT for h in self.headers
        ]
        kinds.append(self.next_header)
        extensions = b"".join(h.build(kinds[i + 1]) for i, h in enumerate(self.headers))
        return (
            ipv6_header(
                self.src,
                self.dst,
                kinds[0],
                len(extensions) + len(self.payload),
                hop_limit=self.hop_limit,
                traffic_class=self.traffic_class,
                flow_label=self.flow_label,
            )
            + extensions
            + self.payload
        )


def ecn_of6(packet: bytes | bytearray | memoryview) -> Ecn:
    """The ECN codepoint of a raw IPv6 packet: the low bits of the traffic class, which
    straddles the first two bytes (RFC 8200 3, RFC 3168 5)."""
    return Ecn((packet[1] >> 4) & 0b11)


def with_ecn6(packet: bytes, ecn: Ecn) -> bytes:
    """The same IPv6 packet with another ECN codepoint (what a router marking CE does;
    IPv6 has no header checksum to redo). Raises WireError on a short header."""
    if len(packet) < HEADER_LENGTH or packet[0] >> 4 != 6:
        raise WireError("not a whole IPv6 header")
    return bytes((packet[0], (packet[1] & 0xCF) | ecn << 4)) + packet[2:]


def ipv6_header(
    src: IPv6Address | int,
    dst: IPv6Address | int,
    next_header: int,
    payload_length: int,
    *,
    hop_limit: int = 64,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """The 40-byte fixed header for a payload of ``payload_length`` bytes (no checksum:
    IPv6 has none; the upper layer covers the addresses, RFC 8200 8.1)."""
    if not 0 <= flow_label <= 0xFFFFF or not 0 <= traffic_class <= 0xFF:
        raise ValueError(f"bad IPv6 traffic class / flow label: {traffic_class}, {flow_label}")
    src, dst = int(src), int(dst)
    try:
        return _HDR.pack(
            0x6000_0000 | traffic_class << 20 | flow_label,
            payload_length,
            next_header,
            hop_limit,
            src >> 64,
            src & _LOW64,
            dst >> 64,
            dst & _LOW64,
        )
    except struct.error as e:
        raise ValueError(f"cannot build IPv6 header: {e}") from e
