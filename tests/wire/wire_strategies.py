"""Hypothesis strategies for wire values: every field over its full range, every option kind."""

from __future__ import annotations

from ipaddress import IPv4Address

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
