"""What an ICMP error means to one TCP connection (RFC 9293 3.9.2.1, RFC 1122 4.2.3.9).

The stack finds the connection by the four-tuple the error quotes; this module says
whether to believe the error and what kind it is, and `Connection.on_icmp_error` acts:

- Believe it only if the quoted sequence number is one we have sent and not yet had
  acknowledged, SND.UNA =< SEG.SEQ < SND.NXT (RFC 5927 4.1): a blind attacker must then
  guess a sequence number in the flight, not just a four-tuple (`acceptable`).
- Soft errors (Destination Unreachable codes 0, 1, 5, 11, 12; Time Exceeded; Parameter
  Problem) may be routing transients: TCP MUST NOT abort (MUST-56); it remembers the
  last one so that, if the connection later times out, the application learns why
  (MUST-47, SHLD-25), as Linux reports sk_err_soft instead of ETIMEDOUT.
- Hard errors (protocol or port unreachable, and the other codes Linux's
  icmp_err_convert() calls fatal) abort a connection still in SYN-SENT or SYN-RECEIVED
  (SHLD-26; ECONNREFUSED for a port unreachable, as Linux). In a synchronized state
  they are treated as soft (RFC 5927 5.2, and Linux's tcp_v4_err): a connection that
  has exchanged data with its peer should not be killed by one unauthenticated packet.
- Fragmentation needed (code 4) is path MTU discovery (RFC 1191), not an error: the
  send MSS drops to fit the next-hop MTU (`mss_for_mtu`), never rises.

Source Quench never gets here: RFC 6633 deprecated it and TCP ignores it (MUST-55).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..wire.seq import SeqNum
from .events import ErrorReason

IP_TCP_HEADERS = 40  # a segment without options: IPv4 20 + TCP 20 (we send no IP options)
MIN_PATH_MTU = 68  # RFC 791 / RFC 1191 3: a host MUST NOT estimate the path MTU below 68
# RFC 1191 7 table 7-1: without a next-hop MTU (an old router), guess the largest plateau
# below the length of the datagram that was too big.
MTU_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)


class Severity(Enum):
    SOFT = "soft"  # remember, never abort (RFC 1122 4.2.3.9)
    HARD = "hard"  # abort before the connection is synchronized (RFC 1122 4.2.3.9)
    PACKET_TOO_BIG = "packet too big"  # lower the send MSS (RFC 1191)


@dataclass(frozen=True, slots=True)
class IcmpErrorKind:
    """One class of ICMP error: how TCP reacts, and what the application is told."""

    severity: Severity
    reason: ErrorReason | None  # None for PACKET_TOO_BIG: nothing to report


_NET_SOFT = IcmpErrorKind(Severity.SOFT, ErrorReason.NETWORK_UNREACHABLE)
_HOST_SOFT = IcmpErrorKind(Severity.SOFT, ErrorReason.HOST_UNREACHABLE)
_NET_HARD = IcmpErrorKind(Severity.HARD, ErrorReason.NETWORK_UNREACHABLE)
_HOST_HARD = IcmpErrorKind(Severity.HARD, ErrorReason.HOST_UNREACHABLE)
PACKET_TOO_BIG = IcmpErrorKind(Severity.PACKET_TOO_BIG, None)

# Destination Unreachable by code (RFC 792, RFC 1122 3.2.2.1, RFC 1812 5.2.7.1). The
# errno each reports follows Linux's icmp_err_convert() table, folded onto four reasons.
_UNREACHABLE: dict[int, IcmpErrorKind] = {
    0: _NET_SOFT,  # net unreachable
    1: _HOST_SOFT,  # host unreachable
    2: IcmpErrorKind(Severity.HARD, ErrorReason.PROTOCOL_UNREACHABLE),  # protocol unreachable
    3: IcmpErrorKind(Severity.HARD, ErrorReason.CONNECTION_REFUSED),  # port unreachable
    4: PACKET_TOO_BIG,  # fragmentation needed and DF set
    5: _HOST_SOFT,  # source route failed
    6: _NET_HARD,  # destination network unknown
    7: _HOST_HARD,  # destination host unknown
    8: _NET_HARD,  # source host isolated
    9: _NET_HARD,  # network administratively prohibited
    10: _HOST_HARD,  # host administratively prohibited
    11: _NET_SOFT,  # network unreachable for type of service
    12: _HOST_SOFT,  # host unreachable for type of service
    13: _HOST_HARD,  # communication administratively prohibited (RFC 1812)
    14: _HOST_HARD,  # host precedence violation
    15: _HOST_HARD,  # precedence cutoff in effect
}
_TIME_EXCEEDED = _HOST_SOFT  # Linux reports EHOSTUNREACH
_PARAMETER_PROBLEM = IcmpErrorKind(Severity.SOFT, ErrorReason.PROTOCOL_ERROR)  # EPROTO


def classify(icmp_type: int, code: int) -> IcmpErrorKind | None:
    """The kind of an ICMP error (RFC 792 type and code), or None if TCP ignores it:
    Source Quench (RFC 6633, MUST-55), an unknown type or code."""
    if icmp_type == 3:
        return _UNREACHABLE.get(code)
    if icmp_type == 11:
        return _TIME_EXCEEDED
    if icmp_type == 12:
        return _PARAMETER_PROBLEM
    return None


# ICMPv6 Destination Unreachable by code (RFC 4443 3.1), folded as Linux's
# icmpv6_err_convert() does; RFC 5461 4 lists port unreachable as the hard one.
_UNREACHABLE6: dict[int, IcmpErrorKind] = {
    0: _NET_SOFT,  # no route to destination
    1: _HOST_HARD,  # communication administratively prohibited
    2: _HOST_SOFT,  # beyond scope of source address
    3: _HOST_SOFT,  # address unreachable
    4: IcmpErrorKind(Severity.HARD, ErrorReason.CONNECTION_REFUSED),  # port unreachable
    5: _HOST_HARD,  # source address failed ingress/egress policy
    6: _HOST_HARD,  # reject route to destination
}
# Parameter Problem code 1, "unrecognized Next Header", is IPv6's protocol unreachable.
_NEXT_HEADER_UNKNOWN = IcmpErrorKind(Severity.HARD, ErrorReason.PROTOCOL_UNREACHABLE)
MIN_PATH_MTU6 = 1280  # RFC 8200 5; RFC 8201 4: never estimate the path MTU below it
IPV6_EXTRA = 20  # the IPv6 header is 20 bytes longer than IPv4's (60 vs 40 with TCP)


def classify6(icmpv6_type: int, code: int) -> IcmpErrorKind | None:
    """The kind of an ICMPv6 error (RFC 4443 type and code), or None if TCP ignores it."""
    if icmpv6_type == 1:
        return _UNREACHABLE6.get(code)
    if icmpv6_type == 2:
        return PACKET_TOO_BIG  # RFC 8201
    if icmpv6_type == 3:
        return _TIME_EXCEEDED
    if icmpv6_type == 4:
        return _NEXT_HEADER_UNKNOWN if code == 1 else _PARAMETER_PROBLEM
    return None


def path_mtu6(mtu: int) -> int:
    """What a Packet Too Big's MTU (RFC 8201 4, never below 1280) means to the core,
    which sizes segments for the 40 bytes of an IPv4 and TCP header: an IPv6 path of
    `mtu` holds the segments an IPv4 path 20 bytes smaller would, so the send MSS
    becomes `mtu` - 60 (RFC 9293 3.7.1)."""
    return max(mtu, MIN_PATH_MTU6) - IPV6_EXTRA


def acceptable(seq: SeqNum, snd_una: SeqNum, snd_nxt: SeqNum) -> bool:
    """RFC 5927 4.1: does the error quote a segment still in flight, SND.UNA =< SEQ <
    SND.NXT? (In TIME-WAIT or before anything is sent the range is empty.)"""
    return snd_una <= seq < snd_nxt


def path_mtu(next_hop_mtu: int, original_length: int) -> int:
    """The path MTU a "fragmentation needed" message tells: its next-hop MTU (RFC 1191 4),
    or, from a router too old to fill that in, the largest plateau below the length of
    the datagram that did not fit (RFC 1191 5, 7); never below 68 (RFC 1191 3)."""
    if next_hop_mtu:
        return max(next_hop_mtu, MIN_PATH_MTU)
    return next((p for p in MTU_PLATEAUS if p < original_length), MIN_PATH_MTU)


def mss_for_mtu(mtu: int, mss: int, *, options: int = 0) -> int:
    """The send MSS for a path MTU of `mtu`: room for the IPv4 and TCP headers (and the
    `options` bytes every segment carries: timestamps), never more than the current
    `mss` (a message only ever lowers the estimate; RFC 1191 finds increases by probing,
    and RFC 8201 4 says MUST NOT for IPv6's twin)."""
    return min(mss, max(mtu, MIN_PATH_MTU) - IP_TCP_HEADERS - options)
