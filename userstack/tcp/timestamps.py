"""RFC 7323 timestamps: the TSopt clock, which timestamp to echo, RTTM and PAWS.

Every segment carries TSval, the sender's timestamp clock, and TSecr, the last TSval it
received that counts (TS.Recent). That buys two things:

- RTTM (RFC 7323 4): an ACK's TSecr is the time its data was sent, even for a
  retransmission, so every ACK that advances SND.UNA is an RTT sample, not one per round
  trip as with RFC 6298's timing of a single segment.
- PAWS (RFC 7323 5): sequence numbers wrap after 4 GiB, a few seconds at 1 GB/s, so an old
  duplicate can carry a sequence number that is in the window again. Its timestamp is old
  though: a segment whose TSval is older than TS.Recent is rejected (R1), the way an
  out-of-window segment is (an ACK in reply, then dropped).

The clock ticks once a millisecond (RFC 7323 5.4: between 1 ms and 1 s per tick), from a
per-connection offset (RFC 7323 7.1) the stack derives from its secret key, as it derives
the ISN (stack/isn.py), so TSval reveals neither the host's uptime nor other connections.
Comparisons are modulo 2^32, like sequence numbers (RFC 7323 5.2).

This object is the arithmetic; the connection calls it from SEGMENT ARRIVES (`screen`,
PAWS, before the window check; `update_recent` after it) and when it builds a segment
(`stamp`), and the Sender takes its RTT samples from it (`rtt_sample`).

    RFC 7323                               here
    3.2  offered in our SYN, used only if  SynOptions.offer / take (syn_options.py)
         both SYNs carry it; then on every
         segment but a RST's, which may
    3.2  a segment without it is dropped   screen() (Rule.TS_MISSING)
    4.1  RTTM: one sample per ACK that     rtt_sample(), Sender.take_rtt_sample
         advances SND.UNA
    4.3  TS.Recent and Last.ACK.sent       update_recent(), option()
    5.3  R1: an older TSval is rejected    screen() (Rule.PAWS_REJECT)
    5.5  TS.Recent invalid after 24 days   recent_valid() (Rule.PAWS_IDLE)
    7.1  a random offset per connection    `offset`, from stack/isn.py
"""

from __future__ import annotations

from ..wire.seq import SeqNum
from ..wire.tcp import NO_OPTIONS, TcpOptions
from .rules import Rule

TICKS_PER_SECOND = 1000  # one tick per millisecond
MODULUS = 1 << 32
HALF = 1 << 31
# RFC 7323 5.5: TS.Recent from a connection idle longer than this may have wrapped
# (2^31 ticks at the fastest allowed clock, 1 ms: 24.8 days); it is no longer valid
PAWS_IDLE = 24 * 24 * 3600.0
# NOP NOP kind length TSval TSecr: what the option adds to every header once agreed, so
# what a full-sized segment's payload gives up (RFC 9293 3.7.1: Eff.snd.MSS counts options)
TSOPT_LEN = 12


def ts_before(a: int, b: int) -> bool:
    """a < b in 32-bit timestamp arithmetic (RFC 7323 5.2)."""
    return a != b and (a - b) % MODULUS >= HALF


def clock_at(offset: int, now: float) -> int:
    """TSval at `now` for a clock that starts from `offset` (RFC 7323 5.4, 7.1)."""
    return (offset + int(now * TICKS_PER_SECOND)) % MODULUS


def screen(
    tsopt: tuple[int, int] | None, ts_recent: int, *, rst: bool, valid: bool
) -> Rule | None:
    """Before the first step of SEGMENT ARRIVES, with timestamps agreed: the rule that
    drops a segment with this TSopt (None: go on). RFC 7323 3.2: a non-RST segment
    without one SHOULD be dropped silently; 5.3 R1: TSval older than TS.Recent is not
    acceptable (the caller sends the ACK); 5.2: a RST is never checked; 5.5: a TS.Recent
    no longer `valid` (24 days idle) proves nothing. Shared with the TIME-WAIT record."""
    if tsopt is None:
        return None if rst else Rule.TS_MISSING
    if rst or not ts_before(tsopt[0], ts_recent):
        return None
    return Rule.PAWS_REJECT if valid else Rule.PAWS_IDLE


def agreed(
    ours: Timestamps | None, theirs: tuple[int, int] | None, now: float
) -> Timestamps | None:
    """The peer's SYN (or SYN,ACK) arrived with TSopt `theirs`, or None: timestamps are
    used only if both SYNs carry them (RFC 7323 3.2), and the peer's TSval is TS.Recent's
    first value. `ours` is None if our configuration does not offer them."""
    if ours is None or theirs is None:
        return None
    ours.peer_syn(theirs[0], now)
    return ours


def timestamps_only(pair: tuple[int, int]) -> TcpOptions:
    """TcpOptions(timestamps=pair): a bulk transfer sends many segments a millisecond, all
    with the same pair, so the last one built serves again. A memo of one entry for all
    connections, not one per connection (an idle connection keeps none, issue 13): what it
    holds is a frozen value, so nothing of one connection can reach another."""
    last = _last_timestamps_only[0]
    if last.timestamps != pair:
        last = _last_timestamps_only[0] = TcpOptions(timestamps=pair)
    return last


_last_timestamps_only = [TcpOptions(timestamps=(0, 0))]


class Timestamps:
    """One connection's timestamp state, once both SYNs carried TSopt (RFC 7323 3.2)."""

    __slots__ = ("last_ack_sent", "offset", "ts_recent", "ts_recent_age")

    def __init__(self, offset: int, ts_recent: int, now: float) -> None:
        """`ts_recent` is the TSval of the peer's SYN (or SYN-ACK): TS.Recent's first value
        (0 until then, for a connection that offers timestamps in its own SYN)."""
        self.offset = offset % MODULUS
        self.ts_recent = ts_recent
        self.ts_recent_age = now  # when TS.Recent was recorded (for the 24-day rule)
        self.last_ack_sent: SeqNum | None = None  # Last.ACK.sent (RFC 7323 4.3)

    def peer_syn(self, tsval: int, now: float) -> None:
        """The peer's SYN (or SYN,ACK) carried TSval: TS.Recent's first value (RFC 7323 4.3)."""
        self.ts_recent = tsval
        self.ts_recent_age = now

    def clock(self, now: float) -> int:
        """TSval at `now`."""
        return clock_at(self.offset, now)

    def option(self, now: float, ack: SeqNum | None) -> tuple[int, int]:
        """(TSval, TSecr) for a segment being sent; `ack` is its ACK field, None without ACK
        (then TSecr is 0, RFC 7323 3.2). Records Last.ACK.sent."""
        if ack is None:
            return self.clock(now), 0
        self.last_ack_sent = ack
        return self.clock(now), self.ts_recent  # RFC 7323 4.3 (3): TSecr = TS.Recent

    def stamp(self, options: TcpOptions, now: float, ack: SeqNum | None) -> TcpOptions:
        """`options` with <TSval, TSecr> added, for a segment going out (`ack` as in
        option()). RFC 7323 3.2: on every segment once agreed."""
        pair = self.option(now, ack)
        if options is NO_OPTIONS:
            return timestamps_only(pair)
        return TcpOptions(options.mss, options.window_scale, options.sack_permitted,
                          options.sack_blocks, pair, options.unknown)

    def screen(self, tsopt: tuple[int, int] | None, *, rst: bool, now: float) -> Rule | None:
        """`screen` against this connection's TS.Recent, valid unless 24 days old."""
        return screen(tsopt, self.ts_recent, rst=rst, valid=self.recent_valid(now))

    def recent_valid(self, now: float) -> bool:
        """RFC 7323 5.5: TS.Recent older than 24 days is no longer valid."""
        return now - self.ts_recent_age <= PAWS_IDLE

    def paws_rejects(self, tsval: int, *, rst: bool, now: float) -> bool:
        """RFC 7323 5.3 R1: TSval older than a valid TS.Recent, not a RST: not acceptable."""
        return not rst and self.recent_valid(now) and ts_before(tsval, self.ts_recent)

    def update_recent(self, tsval: int, seq: SeqNum, now: float) -> bool:
        """RFC 7323 5.3 R3 (4.3 (2)), for a segment that passed the window check: record
        its TSval if it is not older than TS.Recent and the segment starts at or before
        Last.ACK.sent, the left edge of the window we last acknowledged. True if recorded."""
        if ts_before(tsval, self.ts_recent) and self.recent_valid(now):
            return False
        if self.last_ack_sent is not None and seq > self.last_ack_sent:
            return False
        self.ts_recent = tsval
        self.ts_recent_age = now
        return True

    def rtt_sample(self, tsecr: int, now: float, longest: float) -> float | None:
        """RFC 7323 4.1 RTTM: the round trip of the data an ACK with this TSecr covers.
        None for an echo from the future (modulo 2^32 it is then nearly 2^32 ticks old)
        or from longer ago than `longest`, RTO.max (RFC 6298 (2.5)): no round trip the
        retransmission timer waits for is that long, so the TSecr is not an echo of ours
        but a peer's garbage, which would blow SRTT up (Linux takes any up to 24 days)."""
        ticks = (self.clock(now) - tsecr) % MODULUS
        if ticks > longest * TICKS_PER_SECOND:
            return None
        return ticks / TICKS_PER_SECOND
