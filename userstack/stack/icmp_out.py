"""The ICMP and ICMPv6 errors the stack itself sends, rate-limited.

A host sends few errors: a Parameter Problem about an IPv6 packet it cannot process
(RFC 8200 4, 4.5; RFC 7112 5), and Time Exceeded when a datagram's reassembly timed out
with its first fragment in hand (RFC 792, RFC 4443 3.3). (A closed TCP port is answered
by RST, never by an ICMP error.) Before any goes out, the rules every sender of errors
follows:

- never about an ICMP error, so two hosts cannot bounce errors forever (RFC 1122
  3.2.2, RFC 4443 2.4 (e.1));
- never to a source that is not one host, nor about a packet sent to a multicast
  address, except a Parameter Problem code 2 for an option whose type asks for one
  (RFC 4443 2.4 (e.3), (e.4));
- at most `rate` a second with bursts of `burst`, a token bucket (RFC 4443 2.4 (f),
  RFC 1812 4.3.2.8), so a flood of bad packets cannot make us flood someone else.
"""

from __future__ import annotations

from ..wire.errors import WireError
from ..wire.icmp import IcmpType
from ..wire.icmpv6 import ICMPV6_ERROR_TYPES, UNRECOGNIZED_OPTION, Icmpv6Type
from ..wire.ipv4 import IPPROTO_ICMP
from ..wire.ipv6 import HEADER_LENGTH, IPPROTO_ICMPV6, walk_chain
from ..wire.packet import build_icmp_error_packet, build_icmpv6_error_packet
from .addresses import HostAddresses
from .counters import StackCounters

ERROR_RATE = 10.0  # errors a second, in the long run
ERROR_BURST = 10  # errors at once


class IcmpErrors:
    """Builds the stack's ICMP(v6) errors; see the module docstring."""

    def __init__(
        self,
        addresses: HostAddresses,
        counters: StackCounters,
        *,
        rate: float = ERROR_RATE,
        burst: int = ERROR_BURST,
    ) -> None:
        self._addresses = addresses
        self._counters = counters
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def _allowed(self, now: float) -> bool:
        """Take a token from the bucket, refilled at `rate` a second since the last call."""
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            self._counters.icmp_errors_rate_limited += 1
            return False
        self._tokens -= 1
        self._counters.icmp_errors_sent += 1
        return True

    def parameter_problem(
        self, original: bytes, code: int, pointer: int, now: float
    ) -> bytes | None:
        """The Parameter Problem (RFC 4443 3.4) about the IPv6 packet `original`, or None
        when the rules above forbid one."""
        return self._icmpv6(original, Icmpv6Type.PARAMETER_PROBLEM, code, pointer, now)

    def reassembly_timed_out(self, version: int, first_fragment: bytes, now: float) -> bytes | None:
        """Time Exceeded, code 1, quoting the first fragment (RFC 792, RFC 4443 3.3)."""
        if version == 6:
            return self._icmpv6(first_fragment, Icmpv6Type.TIME_EXCEEDED, 1, 0, now)
        local = self._addresses.ipv4
        if local is None or first_fragment[9] == IPPROTO_ICMP:  # no errors about ICMP errors
            return None
        source = int.from_bytes(first_fragment[12:16], "big")
        if not self._addresses.is_one_host(source) or not self._allowed(now):
            return None
        return build_icmp_error_packet(local, source, IcmpType.TIME_EXCEEDED, 1, first_fragment)

    def _icmpv6(
        self, original: bytes, kind: Icmpv6Type, code: int, value: int, now: float
    ) -> bytes | None:
        local = self._addresses.ipv6
        if local is None or len(original) < HEADER_LENGTH:
            return None
        source = int.from_bytes(original[8:24], "big")
        destination = int.from_bytes(original[24:40], "big")
        if not self._addresses.is_one_host(source) or _is_icmpv6_error(original):
            return None
        to_multicast = destination >> 120 == 0xFF
        if to_multicast and not (
            kind == Icmpv6Type.PARAMETER_PROBLEM and code == UNRECOGNIZED_OPTION
        ):
            return None
        if not to_multicast and destination != self._addresses.v6:
            return None
        if not self._allowed(now):
            return None
        return build_icmpv6_error_packet(local, source, kind, code, original, value=value)


def _is_icmpv6_error(packet: bytes) -> bool:
    """Whether `packet` carries an ICMPv6 error message (or is too broken to tell)."""
    try:
        chain = walk_chain(packet, packet[6], HEADER_LENGTH, quoted=True)
    except WireError:
        return True  # never answer what we cannot read
    fragment = chain.fragment
    if chain.next_header != IPPROTO_ICMPV6 or (fragment is not None and fragment.offset):
        return False
    at = chain.payload_offset
    return at >= len(packet) or packet[at] in ICMPV6_ERROR_TYPES
