"""The sender's SACK scoreboard (RFC 2018, RFC 6675 2), one record per segment sent.

RFC 6675 calls the sender's memory of what the peer selectively acknowledged the
"scoreboard". Here it is a list of `SentSegment`s in sequence order, one per
transmitted segment, from SND.UNA to SND.NXT, and it carries what RACK (RFC 8985,
rack.py) needs per segment too: when it was last sent, whether it was retransmitted,
whether it is SACKed, whether it is deemed lost.

    pipe = (SND.NXT - SND.UNA) - sacked - lost       (RFC 6675 4 "SetPipe", with RACK's
                                                      loss marks in place of IsLost())

A retransmitted segment is in flight again: retransmitting clears `lost`, so it counts
in the pipe, as RFC 6675's "S1 <= HighRxt" rule counts it.

Reneging (RFC 2018 8): the receiver may drop data it SACKed, so SACKed data stays in
the send buffer until the cumulative ACK covers it. The scoreboard is kept across a
retransmission timeout (RFC 6675 5.1 and RFC 2018 Errata 1610 allow it "as long as
robust tests for reneging are present"); the test is `reneged()`: a cumulative ACK
that stops at the start of a segment marked SACKed means the receiver threw it away,
and every SACK mark is then cleared.
"""

from __future__ import annotations

from bisect import bisect_right

from ..wire.seq import SeqNum

# The segments of an empty scoreboard: one shared empty tuple, so a scoreboard with
# nothing in flight keeps no list (issue 13).
_NOTHING_SENT: tuple[()] = ()


class SentSegment:
    """One transmitted segment: [start, end) in sequence space (a FIN counts one)."""

    __slots__ = ("end", "lost", "retransmitted", "sacked", "start", "xmit_ts")

    def __init__(self, start: SeqNum, end: SeqNum, xmit_ts: float) -> None:
        self.start = start
        self.end = end
        self.xmit_ts = xmit_ts  # RACK's Segment.xmit_ts: the latest (re)transmission
        self.retransmitted = False
        self.sacked = False
        self.lost = False

    @property
    def length(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        marks = "".join(
            c for c, on in (("S", self.sacked), ("L", self.lost), ("R", self.retransmitted)) if on
        )
        return f"<{self.start.value}:{self.end.value} {marks or '-'} @{self.xmit_ts:g}>"


class Scoreboard:
    """The segments between SND.UNA and SND.NXT, in sequence order.

    An empty scoreboard is never written to: every method but sent() leaves it as it is
    (tests/tcp/test_tcp_sack.py tries them all). So all connections with nothing in
    flight share NOTHING_IN_FLIGHT, and the Sender gives a connection a scoreboard of its
    own only to send data (issue 13: an idle connection keeps none)."""

    __slots__ = ("lost", "sacked", "sacked_segments", "segments")

    def __init__(self) -> None:
        self.segments: list[SentSegment] | tuple[()] = _NOTHING_SENT
        self.sacked = 0  # octets SACKed above SND.UNA
        self.sacked_segments = 0  # how many segments those are (RACK.segs_sacked)
        self.lost = 0  # octets deemed lost and not yet retransmitted

    def pipe(self, flight: int) -> int:
        """RFC 6675 4: octets believed in the network, from FlightSize (SND.NXT - SND.UNA)."""
        return flight - self.sacked - self.lost

    def sent(self, start: SeqNum, end: SeqNum, now: float) -> None:
        """New data [start, end) went out (start is the old SND.NXT)."""
        segments = self.segments
        if segments:
            segments.append(SentSegment(start, end, now))
        else:
            self.segments = [SentSegment(start, end, now)]

    def resent(self, start: SeqNum, end: SeqNum, now: float) -> None:
        """[start, end) was sent again: every segment it overlaps is in flight again."""
        segments = self.segments
        i = self._index(start)
        while i < len(segments) and segments[i].start < end:
            s = segments[i]
            if not s.sacked:
                s.retransmitted = True
                s.xmit_ts = now
                if s.lost:
                    s.lost = False
                    self.lost -= s.length
            i += 1

    def acked(self, una: SeqNum) -> list[SentSegment]:
        """The cumulative ACK moved SND.UNA to `una`: forget the segments it covers and
        return those it newly delivered (not already SACKed), for RACK."""
        segments = self.segments
        if not segments:
            return []
        k = 0
        delivered = []
        for s in segments:
            if s.end > una:
                break
            k += 1
            if s.sacked:
                self.sacked -= s.length
                self.sacked_segments -= 1
            else:
                if s.lost:
                    self.lost -= s.length
                delivered.append(s)
        if k == len(segments):  # all of it: nothing in flight
            self.segments = _NOTHING_SENT
            return delivered
        del segments[:k]  # k < len: a list
        if segments[0].start < una:
            # a segment only partly acknowledged (the peer trimmed it): keep the rest
            first = segments[0]
            cut = una - first.start
            if first.sacked:
                self.sacked -= cut
            elif first.lost:
                self.lost -= cut
            first.start = una
        return delivered

    def sack(self, blocks: tuple[tuple[SeqNum, SeqNum], ...], una: SeqNum) -> list[SentSegment]:
        """Mark the segments wholly inside the SACK blocks (RFC 2018 3); return those
        newly SACKed. Blocks at or below SND.UNA (D-SACKs, RFC 2883) mark nothing."""
        segments = self.segments
        newly = []
        for left, right in blocks:
            if right <= una or right <= left:
                continue
            i = self._index(left)
            while i < len(segments) and segments[i].end <= right:
                s = segments[i]
                if s.start >= left and not s.sacked:
                    s.sacked = True
                    self.sacked += s.length
                    self.sacked_segments += 1
                    if s.lost:
                        s.lost = False
                        self.lost -= s.length
                    newly.append(s)
                i += 1
        return newly

    def reneged(self) -> bool:
        """RFC 2018 8: is the first unacknowledged segment marked SACKed? Then the
        receiver dropped data it had SACKed: clear every SACK mark and say so."""
        segments = self.segments
        if not segments or not segments[0].sacked:
            return False
        for s in segments:
            s.sacked = False
        self.sacked = 0
        self.sacked_segments = 0
        return True

    def mark_lost(self, s: SentSegment) -> None:
        if not s.lost and not s.sacked:
            s.lost = True
            self.lost += s.length

    def mark_all_lost(self) -> None:
        """Everything not SACKed is to be sent again (after an RTO, or a zero window)."""
        for s in self.segments:
            self.mark_lost(s)

    def split_lost(self, mss: int) -> None:
        """The path MTU fell (RFC 1191): every segment not SACKed that is longer than
        `mss` was too big to get through. Cut each into pieces of at most `mss`, all
        marked lost, so they are resent at the new size (as Linux's tcp_simple_retransmit)."""
        if not self.segments:
            return
        out: list[SentSegment] = []
        for s in self.segments:
            if s.sacked or s.length <= mss:
                out.append(s)
                continue
            if not s.lost:
                self.lost += s.length
            start = s.start
            while start < s.end:
                piece = SentSegment(start, min(start + mss, s.end), s.xmit_ts)
                piece.retransmitted = s.retransmitted
                piece.lost = True
                out.append(piece)
                start = piece.end
        self.segments = out or _NOTHING_SENT

    def split(self, s: SentSegment, at: SeqNum) -> None:
        """Cut segment `s` in two at `at` (start < at < end), both keeping its marks: a
        super-segment's first MSS-sized part can then be resent alone (RFC 6675 NextSeg
        sends SMSS-sized pieces; the send window may not hold 64 KB)."""
        rest = SentSegment(at, s.end, s.xmit_ts)
        rest.retransmitted, rest.sacked, rest.lost = s.retransmitted, s.sacked, s.lost
        s.end = at
        if s.sacked:
            self.sacked_segments += 1
        self.segments.insert(self._index(s.start) + 1, rest)

    def first_lost(self, limit: SeqNum) -> SentSegment | None:
        """RFC 6675 4 NextSeg (1): the first segment deemed lost and not retransmitted
        since, if it starts below `limit` (the peer's window edge)."""
        if self.lost:
            for s in self.segments:
                if s.start >= limit:
                    return None
                if s.lost:
                    return s
        return None

    def last(self) -> SentSegment | None:
        """The highest segment sent (what a tail loss probe resends, RFC 8985 7.3)."""
        return self.segments[-1] if self.segments else None

    def sacked_from(self, seq: SeqNum) -> SentSegment | None:
        """The SACKed segment holding `seq`, if any (resending skips it)."""
        i = self._index(seq)
        segments = self.segments
        if i < len(segments) and segments[i].sacked and segments[i].start <= seq:
            return segments[i]
        return None

    def unsacked_run(self, seq: SeqNum, end: SeqNum) -> SeqNum:
        """How far [seq, end) goes before the next SACKed segment."""
        segments = self.segments
        i = self._index(seq)
        while i < len(segments) and segments[i].start < end:
            if segments[i].sacked and segments[i].start > seq:
                return segments[i].start
            i += 1
        return end

    @property
    def empty(self) -> bool:
        """Nothing in flight, nothing SACKed or lost: as NOTHING_IN_FLIGHT is."""
        return not self.segments and not (self.sacked or self.sacked_segments or self.lost)

    def _index(self, seq: SeqNum) -> int:
        """Index of the segment holding `seq` (or the first after it)."""
        segments = self.segments
        if not segments:
            return 0
        base = segments[0].start
        off = seq - base
        if off <= 0:
            return 0
        # segments are contiguous and ordered: bisect on their offsets from the first
        i = bisect_right(segments, off, key=lambda s: s.start - base) - 1
        return max(i, 0) if segments[max(i, 0)].end > seq else i + 1


class _NothingInFlight(Scoreboard):
    """The one empty scoreboard all connections with nothing in flight share."""

    __slots__ = ()

    def sent(self, start: SeqNum, end: SeqNum, now: float) -> None:
        raise AssertionError("the shared empty scoreboard must never record a segment")


NOTHING_IN_FLIGHT: Scoreboard = _NothingInFlight()
