"""Fragment reassembly (RFC 791, RFC 815, RFC 8200 4.5) and every drop rule: overlaps (RFC
5722), a first fragment without the upper-layer header (RFC 7112), the timeout with Time
Exceeded (RFC 792, RFC 4443 3.3), lengths, and the memory bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import KEY, PEER, PEER6, SYN, US, US6, make_stack, packet, seg

from userstack.stack import Stack
from userstack.stack.counters import StackCounters
from userstack.stack.reassembly import REASSEMBLY_TIMEOUT, Reassembler
from userstack.wire.icmp import IcmpError, IcmpType
from userstack.wire.icmpv6 import Icmpv6Error, Icmpv6Type
from userstack.wire.ipv4 import IPv4Flags, IPv4Packet
from userstack.wire.ipv6 import ExtensionHeader, FragmentHeader, IPv6Packet
from userstack.wire.packet import parse_packet
from userstack.wire.tcp import TcpFlags, TcpOptions

SYN_SEG = seg(4000, 80, SYN, seq=1, options=TcpOptions(mss=1000), payload=b"x" * 200)


def fragments4(whole: bytes, size: int, ident: int = 7) -> list[bytes]:
    """`whole` (an IPv4 packet) cut into fragments of `size` data bytes (8n), in order."""
    ip = IPv4Packet.parse(whole)
    data = ip.payload
    return [
        IPv4Packet(
            ip.src,
            ip.dst,
            ip.protocol,
            data[start : start + size],
            identification=ident,
            flags=IPv4Flags.MF if start + size < len(data) else IPv4Flags(0),
            fragment_offset=start >> 3,
        ).build()
        for start in range(0, len(data), size)
    ]


def fragments6(
    whole: bytes, size: int, ident: int = 7, *, fragmentable: tuple[ExtensionHeader, ...] = ()
) -> list[bytes]:
    """`whole` (an IPv6 packet without extension headers) cut into fragments of `size`
    data bytes (8n); `fragmentable` headers go in front of the upper layer, inside."""
    ip = IPv6Packet.parse(whole)
    kinds = [h.kind for h in fragmentable] + [ip.next_header]
    data = b"".join(h.build(kinds[i + 1]) for i, h in enumerate(fragmentable)) + ip.payload
    return [
        IPv6Packet(
            ip.src,
            ip.dst,
            kinds[0],
            data[start : start + size],
            headers=(FragmentHeader(ident, start >> 3, start + size < len(data)),),
        ).build()
        for start in range(0, len(data), size)
    ]


def listening(address: object) -> Stack:
    stack = make_stack(address)  # type: ignore[arg-type]
    stack.listen(80, 8)
    return stack


def only_reply(stack: Stack) -> object:
    [raw] = stack.take_packets()
    return parse_packet(raw)[1]


# ---- whole datagrams -------------------------------------------------------------------


def test_ipv4_fragments_in_any_order_make_the_syn() -> None:
    stack = listening(US)
    pieces = fragments4(packet(SYN_SEG, PEER, US), 64)
    stack.receive_packets(reversed(pieces), 0.0)
    assert only_reply(stack).flags == TcpFlags.SYN | TcpFlags.ACK  # type: ignore[attr-defined]
    assert (stack.counters.fragments_in, stack.counters.fragments_reassembled) == (4, 1)
    assert len(stack.reassembly) == 0 and stack.reassembly.held == 0


def test_ipv6_fragments_with_options_inside_make_the_syn() -> None:
    stack = listening(US6)
    dstopts = ExtensionHeader(60)
    pieces = fragments6(packet(SYN_SEG, PEER6, US6), 64, fragmentable=(dstopts,))
    stack.receive_packets([pieces[2], pieces[0], pieces[3], pieces[1]], 0.0)
    assert only_reply(stack).flags == TcpFlags.SYN | TcpFlags.ACK  # type: ignore[attr-defined]
    assert stack.counters.fragments_reassembled == 1


@settings(max_examples=60, deadline=None)
@given(
    st.booleans(),
    st.integers(3, 27).map(lambda n: 8 * n),  # the TCP header in the first; more than one
    st.randoms(use_true_random=False),
    st.integers(0, 3),
)
def test_any_cut_in_any_order_with_duplicates_reassembles(
    v6: bool, size: int, order: object, duplicates: int
) -> None:
    stack = listening(US6 if v6 else US)
    whole = packet(SYN_SEG, PEER6, US6) if v6 else packet(SYN_SEG, PEER, US)
    pieces = (fragments6 if v6 else fragments4)(whole, size)
    pieces += pieces[: min(duplicates, len(pieces) - 1)]  # never a whole second copy
    order.shuffle(pieces)  # type: ignore[attr-defined]
    stack.receive_packets(pieces, 0.0)
    assert only_reply(stack).flags == TcpFlags.SYN | TcpFlags.ACK  # type: ignore[attr-defined]
    counts = stack.counters
    assert counts.fragments_reassembled == 1 and counts.fragments_overlap == 0


def test_an_exact_duplicate_is_dropped_alone() -> None:
    stack = listening(US)
    pieces = fragments4(packet(SYN_SEG, PEER, US), 64)
    stack.receive_packets([pieces[0], pieces[0], *pieces[1:]], 0.0)
    assert stack.counters.fragments_duplicate == 1 and stack.counters.fragments_reassembled == 1
    assert len(stack.take_packets()) == 1


# ---- RFC 5722: overlaps drop the whole datagram --------------------------------------------


def test_overlap_drops_the_datagram_and_its_later_fragments() -> None:
    for v6 in (False, True):
        stack = listening(US6 if v6 else US)
        whole = packet(SYN_SEG, PEER6, US6) if v6 else packet(SYN_SEG, PEER, US)
        cut = fragments6 if v6 else fragments4
        by_64, by_32 = cut(whole, 64), cut(whole, 32)
        stack.receive_packets([by_64[0], by_32[1]], 0.0)  # 32..64 lies inside 0..64
        stack.receive_packets(by_64[1:], 0.0)  # the rest, now all refused
        assert stack.take_packets() == []
        assert stack.counters.fragments_overlap == 1 + len(by_64[1:])
        stack.on_timer(REASSEMBLY_TIMEOUT)
        assert stack.take_packets() == [] and stack.counters.fragments_timeout == 0
        assert len(stack.reassembly) == 0


# ---- RFC 7112 (and RFC 1858 for IPv4): the first fragment holds the upper-layer header -------


def test_ipv6_first_fragment_without_the_tcp_header_is_a_parameter_problem() -> None:
    stack = listening(US6)
    dstopts = ExtensionHeader(60, bytes((1, 20)) + bytes(20 + 8))  # a 32-byte header
    pieces = fragments6(packet(SYN_SEG, PEER6, US6), 40, fragmentable=(dstopts,))
    stack.receive_packets(pieces, 0.0)  # 40 bytes: dest opts and 8 of the 20 TCP bytes
    error = only_reply(stack)
    assert isinstance(error, Icmpv6Error) and error.type == Icmpv6Type.PARAMETER_PROBLEM
    assert error.code == 3  # RFC 7112 5
    assert stack.counters.fragments_no_upper_header == 1
    assert stack.counters.fragments_reassembled == 0


def test_ipv4_tiny_first_fragment_is_dropped() -> None:
    stack = listening(US)
    pieces = fragments4(packet(SYN_SEG, PEER, US), 16)  # 16 < the 20-byte TCP header
    stack.receive_packets(pieces, 0.0)
    assert stack.take_packets() == [] and stack.counters.fragments_no_upper_header == 1


# ---- lengths -------------------------------------------------------------------------------


def test_bad_lengths() -> None:
    v4, v6 = listening(US), listening(US6)
    not_8n = IPv4Packet(PEER, US, 6, bytes(12), identification=1, flags=IPv4Flags.MF).build()
    too_far = IPv4Packet(PEER, US, 6, bytes(16), identification=2, fragment_offset=0x1FFF).build()
    v4.receive_packets([not_8n, too_far], 0.0)
    assert (v4.counters.fragments_bad_length, v4.counters.fragments_too_big) == (1, 1)
    assert v4.take_packets() == []
    not_8n6 = IPv6Packet(PEER6, US6, 6, bytes(12), headers=(FragmentHeader(1, 0, True),))
    too_far6 = IPv6Packet(PEER6, US6, 6, bytes(16), headers=(FragmentHeader(2, 0x1FFF),))
    v6.receive_packets([not_8n6.build(), too_far6.build()], 0.0)
    problems = [(raw[40], raw[41], int.from_bytes(raw[44:48])) for raw in v6.take_packets()]
    assert problems == [(4, 0, 4), (4, 0, 42)]  # the payload length; the fragment offset
    last = IPv4Packet(PEER, US, 6, bytes(8), identification=3, fragment_offset=2)  # 16..24
    beyond = IPv4Packet(PEER, US, 6, bytes(32), identification=3, flags=IPv4Flags.MF)
    v4.receive_packets([last.build(), beyond.build()], 0.0)  # 0..32 runs past the end
    other_last = IPv4Packet(PEER, US, 6, bytes(8), identification=3, fragment_offset=1)
    v4.receive_packets([last.build(), other_last.build()], 0.0)  # two ends disagree
    assert v4.counters.fragments_bad_length == 3 and len(v4.reassembly) == 0


# ---- the timeout --------------------------------------------------------------------------


def test_timeout_sends_time_exceeded_only_with_the_first_fragment() -> None:
    v4, v6 = listening(US), listening(US6)
    v4.receive_packets(fragments4(packet(SYN_SEG, PEER, US), 64)[:2], 1.0)
    v4.receive_packets(fragments4(packet(SYN_SEG, PEER, US), 64, ident=8)[1:], 2.0)  # no first
    v6.receive_packets(fragments6(packet(SYN_SEG, PEER6, US6), 64)[:1], 1.0)
    assert v4.next_deadline() == 1.0 + REASSEMBLY_TIMEOUT
    v4.on_timer(1.0 + REASSEMBLY_TIMEOUT)
    v6.on_timer(1.0 + REASSEMBLY_TIMEOUT)
    error4, error6 = only_reply(v4), only_reply(v6)
    assert isinstance(error4, IcmpError) and (error4.type, error4.code) == (
        IcmpType.TIME_EXCEEDED,
        1,
    )
    assert isinstance(error6, Icmpv6Error) and (error6.type, error6.code) == (
        Icmpv6Type.TIME_EXCEEDED,
        1,
    )
    assert (error4.src_port, error6.src_port) == (4000, 4000)  # the first fragment, quoted
    v4.on_timer(2.0 + REASSEMBLY_TIMEOUT)
    assert v4.take_packets() == [] and v4.counters.fragments_timeout == 2
    assert v4.next_deadline() is None


# ---- bounded memory -----------------------------------------------------------------------


def test_memory_is_bounded_by_count_and_bytes() -> None:
    counters = StackCounters()
    small = Reassembler(counters, max_bytes=1000, max_datagrams=3)
    for ident in range(5):
        piece = IPv4Packet(PEER, US, 6, bytes(400), identification=ident, flags=IPv4Flags.MF)
        assert small.add_ipv4(piece, piece.build(), 0.0) is None
    assert len(small) == 2 and small.held == 800  # 3 by count, then 1000 bytes: the oldest go
    assert counters.fragments_evicted == 3
    huge = IPv4Packet(PEER, US, 6, bytes(1008), identification=9, flags=IPv4Flags.MF)
    assert small.add_ipv4(huge, huge.build(), 0.0) is None
    assert counters.fragments_no_room == 1 and small.held <= 1000


def test_a_stack_bounds_reassembly_by_default() -> None:
    stack = Stack(US, key=KEY)
    for ident in range(stack.reassembly.max_datagrams + 10):
        piece = IPv4Packet(PEER, US, 6, bytes(24), identification=ident, flags=IPv4Flags.MF)
        stack.receive_packet(piece.build(), 0.0)
    assert len(stack.reassembly) == stack.reassembly.max_datagrams
    assert stack.counters.fragments_evicted == 10


def test_a_piece_beyond_a_later_last_fragment_drops_the_datagram() -> None:
    """Found by the IPv6 fragment fuzz: [16, 24) arrives, then a last fragment for [8, 16).
    The pieces add up to the length the last one gives, yet nothing covers 0..8: the
    datagram is inconsistent and dropped, not "complete"."""
    v4 = listening(US)
    early = IPv4Packet(PEER, US, 6, bytes(8), identification=4, flags=IPv4Flags.MF,
                       fragment_offset=2)  # 16..24, more to come
    last = IPv4Packet(PEER, US, 6, bytes(8), identification=4, fragment_offset=1)  # 8..16, end
    v4.receive_packets([early.build(), last.build()], 0.0)
    assert v4.counters.fragments_bad_length == 1 and v4.counters.fragments_reassembled == 0
    assert len(v4.reassembly) == 0 and v4.take_packets() == []
    assert v4.counters.internal_errors == 0
