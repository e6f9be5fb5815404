"""IP fragment reassembly for both families, sans-I/O: fragments in, whole datagrams out.

A datagram is named by (source, destination, protocol, identification) in IPv4 (RFC 791
3.2) and by (source, destination, identification) in IPv6 (RFC 8200 4.5). Its pieces are
kept by byte offset; it is whole when the last fragment (MF / M clear) has fixed its
length and the pieces, which never overlap, add up to it (RFC 815's hole list, kept as
the simpler invariant "no overlaps, so covered bytes == length means no holes"). The
whole datagram is rebuilt as one packet (the first fragment's header, RFC 791 3.2 and
RFC 8200 4.5) and handed back as bytes, for the stack to parse like any other packet.

What a peer can make it do is bounded and counted (`StackCounters.fragments_*`):

- memory: at most `max_bytes` of fragment data and `max_datagrams` datagrams in
  progress; a fragment that does not fit evicts the oldest datagrams (as Linux does), so
  a flood cannot wedge reassembly for everyone until the timeout;
- time: a datagram not whole `timeout` seconds (60: RFC 8200 4.5, RFC 1122 3.3.2) after
  its first fragment arrived is dropped; if its first fragment (offset 0) had arrived,
  `expire()` returns it so the stack can send Time Exceeded, code 1 (RFC 792, RFC 4443
  3.3); without it no error is sent (RFC 792, RFC 8200 4.5);
- overlapping fragments drop the whole datagram, and the fragments of it still to come
  (RFC 5722 4; done for IPv4 too, as Linux does): the datagram is remembered, empty,
  until its timeout. An exact duplicate is dropped alone (RFC 8200 4.5 allows this);
- a first fragment without the whole header chain and the upper-layer header drops the
  datagram (RFC 7112 5; for IPv4 the "tiny fragment" of RFC 1858 3.1);
- a fragment whose data is not a multiple of 8 bytes yet not the last, one that would
  make the datagram longer than 65535 bytes, or a last fragment that disagrees with the
  length already known, is dropped.

For IPv6 the RFC asks for a Parameter Problem in some of these cases; `add_ipv6` then
raises `ParameterProblem` (code and pointer) after counting, and the stack answers it.
The stack itself never sends fragments: TCP sizes its segments to the MTU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire.ipv4 import IPPROTO_TCP, IPv4Flags, IPv4Packet
from ..wire.ipv6 import HEADER_LENGTH, FragmentHeader, IPv6Packet, ParameterProblem
from ..wire.ipv6 import upper_layer_header_present as _chain_complete
from .counters import StackCounters

REASSEMBLY_TIMEOUT = 60.0  # RFC 8200 4.5; RFC 1122 3.3.2 recommends 60 to 120 s
MAX_BYTES = 1 << 20  # fragment data held at once, all datagrams together
MAX_DATAGRAMS = 64  # datagrams being reassembled at once
MAX_DATAGRAM = 65535  # the largest length either header can state
_TCP_HEADER = 20  # RFC 1858 3.1: a first fragment must hold the whole TCP header

ReassemblyKey = tuple[int, ...]


@dataclass(slots=True)
class _Datagram:
    deadline: float
    pieces: dict[int, bytes] = field(default_factory=dict)  # byte offset -> data
    held: int = 0  # bytes in `pieces`
    length: int | None = None  # known once the last fragment arrived
    first: IPv4Packet | IPv6Packet | None = None  # the fragment at offset 0, parsed
    first_raw: bytes = b""  # ... and as it arrived, for the Time Exceeded quote
    dead: bool = False  # overlapped (RFC 5722): its fragments are dropped until the deadline


@dataclass(frozen=True, slots=True)
class Expired:
    """A datagram that timed out; `first_fragment` is the raw first fragment, or None."""

    version: int
    first_fragment: bytes | None


class Reassembler:
    """See the module docstring."""

    def __init__(
        self,
        counters: StackCounters,
        *,
        timeout: float = REASSEMBLY_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_datagrams: int = MAX_DATAGRAMS,
    ) -> None:
        if timeout <= 0 or max_bytes < 1 or max_datagrams < 1:
            raise ValueError(f"bad reassembly limits: {timeout}, {max_bytes}, {max_datagrams}")
        self.counters = counters
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.held = 0
        self._datagrams: dict[ReassemblyKey, _Datagram] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._datagrams)

    # ---- fragments in ----------------------------------------------------------------

    def add_ipv4(self, packet: IPv4Packet, raw: bytes, now: float) -> bytes | None:
        """One IPv4 fragment; the whole datagram as a packet once it is complete."""
        self.counters.fragments_in += 1
        data, start = packet.payload, packet.fragment_offset << 3
        more = bool(packet.flags & IPv4Flags.MF)
        if more and len(data) % 8:  # RFC 791 3.2: every fragment but the last is 8n long
            self.counters.fragments_bad_length += 1
            return None
        if 20 + len(packet.options) + start + len(data) > MAX_DATAGRAM:
            self.counters.fragments_too_big += 1
            return None
        key = (4, int(packet.src), int(packet.dst), packet.protocol, packet.identification)
        first_ok = start or packet.protocol != IPPROTO_TCP or len(data) >= _TCP_HEADER
        whole = self._add(key, packet, raw, start, more, first_ok, now)
        if whole is None:
            return None
        first, data = whole
        assert isinstance(first, IPv4Packet)
        return IPv4Packet(
            first.src,
            first.dst,
            first.protocol,
            data,
            first.ttl,
            first.tos,
            first.identification,
            first.flags & ~IPv4Flags.MF,
            0,
            first.options,
        ).build()

    def add_ipv6(self, packet: IPv6Packet, raw: bytes, now: float) -> bytes | None:
        """One IPv6 fragment (its `fragment` header set); the whole packet once complete.
        Raises ParameterProblem where RFC 8200 4.5 / RFC 7112 5 ask for one."""
        fragment = packet.fragment
        assert fragment is not None, "not a fragment"
        self.counters.fragments_in += 1
        data, start = packet.payload, fragment.offset << 3
        unfragmentable = len(raw) - HEADER_LENGTH - len(data) - 8
        if fragment.more and len(data) % 8:
            self.counters.fragments_bad_length += 1
            raise ParameterProblem("fragment length not a multiple of 8", 0, 4)
        if unfragmentable + start + len(data) > MAX_DATAGRAM:
            self.counters.fragments_too_big += 1
            pointer = HEADER_LENGTH + unfragmentable + 2  # the Fragment Offset field
            raise ParameterProblem("reassembled packet would exceed 65535 bytes", 0, pointer)
        key = (6, int(packet.src), int(packet.dst), fragment.identification)
        first_ok = bool(start) or _chain_complete(data, packet.next_header)
        whole = self._add(key, packet, raw, start, fragment.more, first_ok, now)
        if whole is None:
            if start == 0 and not first_ok:  # RFC 7112 5: code 3, "incomplete chain"
                raise ParameterProblem("first fragment lacks the upper-layer header", 3, 0)
            return None
        first, data = whole
        assert isinstance(first, IPv6Packet)
        headers = first.headers
        assert isinstance(headers[-1], FragmentHeader)
        return IPv6Packet(
            first.src,
            first.dst,
            first.next_header,
            data,
            first.hop_limit,
            first.traffic_class,
            first.flow_label,
            headers[:-1],
        ).build()

    def _add(
        self,
        key: ReassemblyKey,
        packet: IPv4Packet | IPv6Packet,
        raw: bytes,
        start: int,
        more: bool,
        first_ok: bool | int,
        now: float,
    ) -> tuple[IPv4Packet | IPv6Packet, bytes] | None:
        counters = self.counters
        data = packet.payload
        end = start + len(data)
        datagram = self._datagrams.get(key)
        if datagram is not None and datagram.dead:
            counters.fragments_overlap += 1  # the rest of a datagram RFC 5722 dropped
            return None
        if start == 0 and not first_ok:  # RFC 7112 5, RFC 1858 3.1
            counters.fragments_no_upper_header += 1
            self._drop(key)
            return None
        if datagram is None:
            if not self._make_room(len(data)):
                counters.fragments_no_room += 1
                return None
            datagram = self._datagrams[key] = _Datagram(now + self.timeout)
        elif not self._make_room(len(data), keep=key):
            counters.fragments_no_room += 1
            self._drop(key)
            return None
        length = datagram.length
        if (
            (not more and length is not None and length != end)
            or (length is not None and end > length)
            # the last fragment arrives after a piece that lies beyond its end
            or (not more and any(s + len(d) > end for s, d in datagram.pieces.items()))
        ):
            counters.fragments_bad_length += 1  # disagrees with the last fragment
            self._drop(key)
            return None
        for other_start, other in datagram.pieces.items():
            if other_start < end and start < other_start + len(other):
                if other_start == start and other == data:
                    counters.fragments_duplicate += 1
                    return None
                counters.fragments_overlap += 1  # RFC 5722 4
                self._kill(key, datagram)
                return None
        if not more:
            datagram.length = end
        datagram.pieces[start] = data
        datagram.held += len(data)
        self.held += len(data)
        if start == 0:
            datagram.first, datagram.first_raw = packet, raw
        if datagram.length is None or datagram.held != datagram.length:
            return None
        first = datagram.first
        assert first is not None  # no holes: the piece at 0 is there
        whole = b"".join(datagram.pieces[offset] for offset in sorted(datagram.pieces))
        self._drop(key)
        counters.fragments_reassembled += 1
        return first, whole

    def _make_room(self, size: int, *, keep: ReassemblyKey | None = None) -> bool:
        """Evict the oldest datagrams (never `keep`) until `size` more bytes and, for a new
        datagram, one more entry fit; False if even that cannot make room."""
        datagrams = self._datagrams
        new = keep is None
        while self.held + size > self.max_bytes or (new and len(datagrams) >= self.max_datagrams):
            oldest = next((k for k in datagrams if k != keep), None)
            if oldest is None:
                return False
            self.counters.fragments_evicted += 1
            self._drop(oldest)
        return True

    def _kill(self, key: ReassemblyKey, datagram: _Datagram) -> None:
        self.held -= datagram.held
        datagram.pieces.clear()
        datagram.held = 0
        datagram.first, datagram.first_raw, datagram.dead = None, b"", True

    def _drop(self, key: ReassemblyKey) -> None:
        datagram = self._datagrams.pop(key, None)
        if datagram is not None:
            self.held -= datagram.held

    # ---- time --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the oldest datagram times out (every datagram has the same timeout, so
        the oldest is the first), or None."""
        for datagram in self._datagrams.values():
            return datagram.deadline
        return None

    def expire(self, now: float) -> list[Expired]:
        """Drop every datagram whose time is up; the ones whose first fragment arrived
        come back for a Time Exceeded (code 1). A datagram RFC 5722 killed is not reported."""
        expired: list[Expired] = []
        datagrams = self._datagrams
        while datagrams:
            key, datagram = next(iter(datagrams.items()))
            if datagram.deadline > now:
                break
            self._drop(key)
            if datagram.dead:
                continue
            self.counters.fragments_timeout += 1
            expired.append(Expired(key[0], datagram.first_raw or None))
        return expired
