"""TIME-WAIT without the connection: the few numbers RFC 9293 needs to answer for a
four-tuple in TIME-WAIT, in a record of about 220 bytes instead of a whole TCB.

In TIME-WAIT a connection sends no data and receives none; for 2*MSL it only answers
(RFC 9293 3.10.7.4, in TIME-WAIT):

- a retransmission of the peer's FIN (our last ACK was lost): ACK it again, restart 2*MSL;
- any other segment outside the window: ACK it (the first step), unless it is a RST;
- a RST: ignored (RFC 1337: no "TIME-WAIT assassination");
- a SYN: a challenge ACK (RFC 5961 4), rate-limited (RFC 5961 7), unless it may start a
  new incarnation of the four-tuple (RFC 1122 4.2.2.13, or with timestamps RFC 6191 2:
  `new_incarnation_rule`): then the stack drops the record and hands the SYN to its
  listener, with an ISS above our old SND.NXT (`iss_above`). If the connection used
  timestamps, a SYN that may not is dropped silently instead (RFC 6191 2,
  `drops_old_syn`);
- an ACK of something never sent: a challenge ACK; any other ACK: nothing;
- with timestamps (RFC 7323), first of all: a segment without them is dropped, one with
  a TSval older than TS.Recent gets an ACK and nothing else (PAWS); every ACK carries
  TSval from the connection's clock and TS.Recent.

So the stack keeps a `TimeWait` record once a `Connection` reaches TIME-WAIT and lets the
connection go (stack/time_wait_table.py). `Connection` still implements TIME-WAIT itself
(its own 2*MSL timer and the same answers), for the core on its own and its tests; both
use the two rule functions below.

What the record keeps, packed into one int (one object, not seven): SND.NXT and RCV.NXT,
RCV.WND and Rcv.Wind.Shift (to test acceptability and to fill the window field) and, if
the connection used timestamps, TS.Recent and its clock offset (for PAWS, for stamping its
ACKs and for RFC 6191's reuse); beside it the expiry and the time of the last challenge
ACK. The four-tuple is the table's key, the configuration (MSL, TTL, challenge ACK limit)
is shared by every record of the table that uses it. Two departures from the connection:
TS.Recent is taken as valid (2*MSL is far below RFC 7323 5.5's 24 days), no D-SACK block on the
ACK of a duplicate (a record keeps no SACK state), and no challenge ACK for an ACK older
than SND.UNA - MAX.SND.WND (RFC 5961 5.2 protects data in flight; there is none).

Given an Explainer (tcp/rules.py), `on_segment` names the rules it applied, the same rules
in the same order as a Connection in TIME-WAIT (tests/tcp/test_tcp_time_wait_record.py
checks it), so `serve --trace --why` reads alike before and after the stack lets the
connection go. Two rules it cannot name, for the departures above and because it keeps no
send window: `rfc5961.ack_too_old` and `ack.window_update`. Without one (None, the default)
each decision point costs one ``is not None`` test.
"""

from __future__ import annotations

from ..wire.seq import SeqNum
from ..wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment
from .rules import Explainer, Rule
from .tcb import Tcb, segment_acceptable
from .timestamps import Timestamps, clock_at, screen, ts_before

SYN = int(TcpFlags.SYN)
ACK = int(TcpFlags.ACK)
FIN = int(TcpFlags.FIN)
RST = int(TcpFlags.RST)
_CONTROL = SYN | ACK | RST | FIN  # a connection request has SYN alone of these
_ACK_FLAGS = TcpFlags.ACK
_MASK32 = 0xFFFFFFFF
# The record's one int, from bit 0: RCV.NXT, SND.NXT (32 bits each), Rcv.Wind.Shift (4),
# RCV.WND (32), then only with timestamps a 1 bit, TS.Recent and the clock offset (32 each)
_WSCALE, _WND, _TS, _RECENT, _OFFSET = 64, 68, 100, 101, 133


def new_incarnation_rule(
    seg: TcpSegment, rcv_nxt: SeqNum, ts_recent: int | None = None, *, timestamps: bool = True
) -> Rule | None:
    """May this SYN, for a four-tuple in TIME-WAIT, start a new incarnation? The rule that
    lets it, or None. RFC 6191 2, case by case (`ts_recent`: TS.Recent if the old
    incarnation used timestamps; `timestamps`: we would offer them to the new one):

    - the new incarnation will use timestamps (the SYN carries TSopt, we offer them): if
      the old one used them too, its TSval must be newer than TS.Recent, or equal with
      SEG.SEQ beyond RCV.NXT; if not, any such SYN (the old incarnation's segments carry
      no TSopt, so the new one drops them: RFC 7323 3.2);
    - otherwise SEG.SEQ must be beyond RCV.NXT (RFC 9293 3.6.1 MAY-2, after RFC 1122
      4.2.2.13): every segment of the old incarnation lies below it.

    A SYN refused here is `drops_old_syn`'s when the old incarnation used timestamps."""
    if int(seg.flags) & _CONTROL != SYN:
        return None
    tsopt = seg.options.timestamps
    if tsopt is not None and timestamps:
        if ts_recent is None or ts_before(ts_recent, tsopt[0]) or (
                tsopt[0] == ts_recent and seg.seq > rcv_nxt):
            return Rule.NEW_INCARNATION_TIMESTAMP
        return None
    return Rule.NEW_INCARNATION if seg.seq > rcv_nxt else None


def drops_old_syn(
    seg: TcpSegment, rcv_nxt: SeqNum, ts_recent: int, why: Explainer | None, *,
    timestamps: bool = True,
) -> bool:
    """RFC 6191 2, the last case, for an old incarnation that used timestamps: a SYN that
    may not start a new incarnation (`new_incarnation_rule` None) may be an old duplicate,
    so "silently drop the incoming SYN segment, thus leaving the previous incarnation of
    the connection in the TIME-WAIT state": no ACK (not PAWS's, not RFC 5961's challenge),
    TS.Recent and 2*MSL untouched. True: dropped. (Linux answers with a rate-limited ACK,
    which lets the peer's SYN-SENT send a RST that ends Linux's TIME-WAIT; ours ignores
    RSTs, RFC 1337, so the ACK could not help the peer.)"""
    if int(seg.flags) & _CONTROL != SYN or new_incarnation_rule(
            seg, rcv_nxt, ts_recent, timestamps=timestamps) is not None:
        return False
    if why is not None:
        why.decide(Rule.TIME_WAIT_OLD_SYN, seg_tsval=(seg.options.timestamps or (None,))[0],
                   ts_recent=ts_recent, seg_seq=seg.seq, rcv_nxt=rcv_nxt)
    return True


def is_new_incarnation_syn(seg: TcpSegment, rcv_nxt: SeqNum, ts_recent: int | None = None) -> bool:
    """`new_incarnation_rule` as a yes or no."""
    return new_incarnation_rule(seg, rcv_nxt, ts_recent) is not None


def iss_above(isn: SeqNum, snd_nxt: SeqNum) -> SeqNum:
    """RFC 1122 4.2.2.13 (a): the new incarnation's ISS must be larger than any sequence
    number the old one used; `isn` is the generator's choice (RFC 6528)."""
    return isn if isn > snd_nxt else snd_nxt + 1


class TimeWait:
    """One four-tuple in TIME-WAIT; see the module docstring."""

    __slots__ = ("_challenged_at", "_packed", "expiry")

    def __init__(
        self, snd_nxt: SeqNum, rcv_nxt: SeqNum, rcv_wnd: int, rcv_wscale: int, expiry: float,
        timestamps: tuple[int, int] | None = None,
    ) -> None:
        """RCV.WND in bytes as last offered, Rcv.Wind.Shift (RFC 7323 2.2); `timestamps`:
        (the TSval clock's offset, TS.Recent) if the connection used them (RFC 7323)."""
        packed = rcv_wnd << _WND | rcv_wscale << _WSCALE | snd_nxt.value << 32 | rcv_nxt.value
        if timestamps is not None:
            offset, recent = timestamps
            packed |= offset << _OFFSET | recent << _RECENT | 1 << _TS
        self._packed = packed
        self.expiry = expiry  # when 2*MSL is over
        self._challenged_at: float | None = None  # the last challenge ACK (RFC 5961 7)

    @classmethod
    def from_tcb(cls, tcb: Tcb, expiry: float, ts: Timestamps | None = None) -> TimeWait:
        """The record of a connection that reached TIME-WAIT (its TCB, its 2*MSL deadline,
        its timestamps if it used them)."""
        return cls(tcb.snd_nxt, tcb.rcv_nxt, tcb.rcv_wnd, tcb.rcv_wscale, expiry,
                   None if ts is None else (ts.offset, ts.ts_recent))

    @property
    def snd_nxt(self) -> SeqNum:
        return SeqNum((self._packed >> 32) & _MASK32)

    @property
    def rcv_nxt(self) -> SeqNum:
        return SeqNum(self._packed & _MASK32)

    @property
    def rcv_wnd(self) -> int:
        return (self._packed >> _WND) & _MASK32

    @property
    def rcv_wscale(self) -> int:
        return (self._packed >> _WSCALE) & 0xF

    @property
    def ts_recent(self) -> int | None:
        """TS.Recent, or None if the connection did not use timestamps."""
        packed = self._packed
        return (packed >> _RECENT) & _MASK32 if packed >> _TS & 1 else None

    def accepts_new_syn(self, seg: TcpSegment) -> bool:
        return is_new_incarnation_syn(seg, self.rcv_nxt, self.ts_recent)

    def new_incarnation_rule(self, seg: TcpSegment, *, timestamps: bool = True) -> Rule | None:
        """`timestamps`: the listener would offer them to the new incarnation."""
        return new_incarnation_rule(seg, self.rcv_nxt, self.ts_recent, timestamps=timestamps)

    def new_incarnation_iss(self, isn: SeqNum) -> SeqNum:
        return iss_above(isn, self.snd_nxt)

    def on_segment(
        self, seg: TcpSegment, now: float, two_msl: float, challenge_ack_limit: int | None,
        why: Explainer | None = None, *, timestamps: bool = True,
    ) -> TcpSegment | None:
        """SEGMENT ARRIVES in TIME-WAIT (RFC 9293 3.10.7.4): the ACK to send, or None.
        A retransmitted FIN moves `expiry` to now + two_msl. `why` hears the rules;
        `timestamps`: a new incarnation would use them, if the SYN asks (RFC 6191 2)."""
        flags = int(seg.flags)
        recent = self.ts_recent
        if recent is not None:
            dropped = self._check_paws(seg, recent, why, timestamps)
            if dropped is not None:
                return self._ack(seg, now) if dropped is Rule.PAWS_REJECT else None
        rcv_nxt = self.rcv_nxt
        seg_len = len(seg.payload) + bool(flags & SYN) + bool(flags & FIN)
        ack_owed = False
        if not segment_acceptable(seg.seq, seg_len, rcv_nxt, self.rcv_wnd):
            if self.rcv_wnd == 0 and seg.seq == rcv_nxt:
                # the zero-window allowance: the controls go on, the text is ACKed
                if why is not None:
                    why.decide(Rule.ZERO_WINDOW_CONTROL, seg_seq=seg.seq, seg_len=seg_len,
                               rcv_wnd=0)
                ack_owed = bool(seg.payload)
            else:  # first: check the sequence number
                if flags & RST:
                    if why is not None:
                        why.decide(Rule.NOT_ACCEPTABLE_RST, seg_seq=seg.seq, rcv_nxt=rcv_nxt,
                                   rcv_wnd=self.rcv_wnd)
                    return None
                if flags & FIN and seg.seq + seg_len == rcv_nxt:
                    if why is not None:
                        why.decide(Rule.TIME_WAIT_FIN_AGAIN, seg_seq=seg.seq, rcv_nxt=rcv_nxt,
                                   msl=two_msl / 2)
                    self.expiry = now + two_msl  # the peer's FIN again: restart 2*MSL
                if why is not None:
                    why.decide(Rule.NOT_ACCEPTABLE, seg_seq=seg.seq, seg_len=seg_len,
                               rcv_nxt=rcv_nxt, rcv_wnd=self.rcv_wnd)
                return self._ack(seg, now)
        elif why is not None:
            why.decide(Rule.ACCEPTABLE, seg_seq=seg.seq, seg_len=seg_len, rcv_nxt=rcv_nxt,
                       rcv_wnd=self.rcv_wnd)
        if recent is not None:
            self._record_ts_recent(seg, recent, why)
        reply = None
        if flags & RST:  # second: RFC 1337, ignore it
            if why is not None:
                why.decide(Rule.RST_TIME_WAIT_IGNORED)
        elif flags & SYN:  # fourth: a SYN (RFC 5961 4)
            if why is not None:
                why.decide(Rule.SYN_CHALLENGE, seg_seq=seg.seq)
            reply = self._challenge_ack(seg, now, challenge_ack_limit)
        else:  # fifth: the ACK field
            if why is not None:
                self._explain_ack(seg, why)
            if flags & ACK and seg.ack > self.snd_nxt:  # an ACK of something never sent
                reply = self._challenge_ack(seg, now, challenge_ack_limit)
        # an acceptable ACK gets nothing; text and FIN are ignored in TIME-WAIT
        return reply if reply is not None or not ack_owed else self._ack(seg, now)

    def _explain_ack(self, seg: TcpSegment, why: Explainer) -> None:
        """The fifth step's verdict, named as a Connection names it (SND.UNA = SND.NXT:
        everything we sent, our FIN too, is acknowledged)."""
        snd_nxt = self.snd_nxt
        if not int(seg.flags) & ACK:
            why.decide(Rule.ACK_MISSING)
        elif seg.ack > snd_nxt:
            why.decide(Rule.ACK_NOT_SENT, seg_ack=seg.ack, snd_nxt=snd_nxt)
        else:
            why.decide(Rule.ACK_OLD, seg_ack=seg.ack, snd_una=snd_nxt, snd_nxt=snd_nxt)

    def _challenge_ack(
        self, seg: TcpSegment, now: float, limit: int | None
    ) -> TcpSegment | None:
        """RFC 5961 7 for a record: at most one challenge ACK each 1/limit seconds (a
        connection allows `limit` in any one second; a record has room for one time)."""
        if limit is not None:
            last = self._challenged_at
            if last is not None and now - last < 1.0 / limit:
                return None
            self._challenged_at = now
        return self._ack(seg, now)

    def _check_paws(
        self, seg: TcpSegment, recent: int, why: Explainer | None, timestamps: bool
    ) -> Rule | None:
        """RFC 7323 before the first step, as the connection does it (timestamps.screen):
        the rule that drops the segment (no TSopt: silently; an older TSval, PAWS: with an
        ACK), or None. TS.Recent is taken as valid: it is younger than 2*MSL, far from
        RFC 7323 5.5's 24 days. First of all, a SYN RFC 6191 2 refuses: silently."""
        if drops_old_syn(seg, self.rcv_nxt, recent, why, timestamps=timestamps):
            return Rule.TIME_WAIT_OLD_SYN
        tsopt = seg.options.timestamps
        rule = screen(tsopt, recent, rst=bool(int(seg.flags) & RST), valid=True)
        if rule is not None and why is not None:
            why.decide(rule, seg_tsval=None if tsopt is None else tsopt[0], ts_recent=recent)
        return rule

    def _record_ts_recent(self, seg: TcpSegment, recent: int, why: Explainer | None) -> None:
        """RFC 7323 4.3 (2) for an acceptable segment: Last.ACK.sent is RCV.NXT here (all
        is acknowledged); never a RST's TSval (5.2)."""
        tsopt = seg.options.timestamps
        if tsopt is None or int(seg.flags) & RST:
            return
        rcv_nxt = self.rcv_nxt
        if seg.seq > rcv_nxt or ts_before(tsopt[0], recent):
            if why is not None:
                why.decide(Rule.TS_RECENT_KEPT, seg_tsval=tsopt[0], seg_seq=seg.seq,
                           ts_recent=recent, last_ack_sent=rcv_nxt)
            return
        self._packed = self._packed & ~(_MASK32 << _RECENT) | tsopt[0] << _RECENT

    def _ack(self, seg: TcpSegment, now: float) -> TcpSegment:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, with the window we last offered and, if
        the connection used them, TSval from its clock and TSecr = TS.Recent (RFC 7323)."""
        shift = self.rcv_wscale
        window = min((self.rcv_wnd + (1 << shift) - 1) >> shift, 0xFFFF)  # never shrink
        packed = self._packed
        options = NO_OPTIONS if not packed >> _TS & 1 else TcpOptions(timestamps=(
            clock_at((packed >> _OFFSET) & _MASK32, now), (packed >> _RECENT) & _MASK32))
        return TcpSegment(
            seg.dst_port, seg.src_port, self.snd_nxt, self.rcv_nxt, _ACK_FLAGS, window, options
        )
