"""Hypothesis strategies for wire values: every field over its full range, every option kind,
IPv6 with every extension header this stack walks."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from userstack.wire import (
    IcmpEcho,
    IcmpType,
    IPv4Flags,
    IPv4Packet,
    SeqNum,
    TcpFlags,
    TcpOptions,
    TcpSegment,
)
from userstack.wire.icmpv6 import Icmpv6Echo, Icmpv6Type
from userstack.wire.ipv6 import (
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    ExtensionHeader,
    FragmentHeader,
    IPv6Packet,
)

KNOWN_KINDS = {0, 1, 2, 3, 4, 5, 8}

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
addresses = u32.map(IPv4Address)
seqnums = u32.map(SeqNum)


def _fits(options: TcpOptions) -> bool:
    try:
        options.build()
    except ValueError:
        return False
    return True


tcp_options = st.builds(
    TcpOptions,
    mss=st.none() | u16,
    window_scale=st.none() | u8,
    sack_permitted=st.booleans(),
    sack_blocks=st.lists(st.tuples(seqnums, seqnums), max_size=3).map(tuple),
    timestamps=st.none() | st.tuples(u32, u32),
    unknown=st.lists(
        st.tuples(u8.filter(lambda k: k not in KNOWN_KINDS), st.binary(max_size=6)), max_size=2
    ).map(tuple),
).filter(_fits)

tcp_segments = st.builds(
    TcpSegment,
    src_port=u16,
    dst_port=u16,
    seq=seqnums,
    ack=seqnums,
    flags=u8.map(TcpFlags),
    window=u16,
    options=tcp_options,
    payload=st.binary(max_size=64),
    urgent=u16,
)

ipv4_packets = st.builds(
    IPv4Packet,
    src=addresses,
    dst=addresses,
    protocol=u8,
    payload=st.binary(max_size=64),
    ttl=u8,
    tos=u8,
    identification=u16,
    flags=st.sampled_from([IPv4Flags(0), IPv4Flags.DF, IPv4Flags.RESERVED | IPv4Flags.DF]),
    options=st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)

icmp_echoes = st.builds(
    IcmpEcho,
    type=st.sampled_from([IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY]),
    identifier=u16,
    sequence=u16,
    data=st.binary(max_size=64),
    code=u8,
)


# --- IPv6 and ICMPv6 ----------------------------------------------------------------------

addresses6 = st.integers(0, 2**128 - 1).map(IPv6Address)
_EXTENSION_KINDS = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS}


@st.composite
def _options_data(draw: st.DrawFn) -> bytes:
    """The body of an options header: options whose type says "skip if unknown" (RFC 8200
    4.2: high bits 00), padded with Pad1 / PadN to 6 + 8n bytes."""
    out = bytearray()
    for kind, value in draw(st.lists(st.tuples(st.integers(2, 0x3F), st.binary(max_size=10)))):
        out += bytes((kind, len(value))) + value
    pad = -(len(out) - 6) % 8 if len(out) > 6 else 6 - len(out)
    out += b"\x00" if pad == 1 else (bytes((1, pad - 2)) + bytes(pad - 2) if pad else b"")
    return bytes(out)


options_headers = st.builds(ExtensionHeader, st.sampled_from([IPPROTO_DSTOPTS]), _options_data())
routing_headers = st.builds(
    ExtensionHeader,
    st.just(IPPROTO_ROUTING),
    st.tuples(u8, st.integers(0, 3)).flatmap(
        lambda t: st.binary(min_size=4 + 8 * t[1], max_size=4 + 8 * t[1]).map(
            lambda rest, kind=t[0]: bytes((kind, 0)) + rest  # segments left 0: ignored
        )
    ),
)
fragment_headers = st.builds(FragmentHeader, u32, st.integers(0, 0x1FFF), st.booleans())


@st.composite
def ipv6_packets(draw: st.DrawFn) -> IPv6Packet:
    headers: list[ExtensionHeader | FragmentHeader] = []
    if draw(st.booleans()):
        headers.append(ExtensionHeader(IPPROTO_HOPOPTS, draw(_options_data())))
    headers += draw(st.lists(options_headers | routing_headers, max_size=3))
    fragment = draw(st.none() | fragment_headers)
    if fragment is not None:
        headers.append(fragment)
    if fragment is not None and not fragment.atomic:
        next_header = draw(u8)  # the walk stops at the fragment header
    else:
        next_header = draw(u8.filter(lambda k: k not in _EXTENSION_KINDS))
    return IPv6Packet(
        draw(addresses6),
        draw(addresses6),
        next_header,
        draw(st.binary(max_size=64)),
        draw(u8),
        draw(u8),
        draw(st.integers(0, 0xFFFFF)),
        tuple(headers),
    )


icmpv6_echoes = st.builds(
    Icmpv6Echo,
    type=st.sampled_from([Icmpv6Type.ECHO_REQUEST, Icmpv6Type.ECHO_REPLY]),
    identifier=u16,
    sequence=u16,
    data=st.binary(max_size=64),
    code=u8,
)
