"""The sending half of a connection: everything between SEND and the peer's ACK.

How to read this beside the RFCs
--------------------------------
The `Sender` owns the send buffer and the cursors into it, the scoreboard of what is in
flight, RTT sampling with Karn's rule, the congestion controller and the loss-recovery
strategy. The state machine (connection.py) tells it what the RFC steps found, with `now`,
and it answers by transmitting through the connection's `emit` (which adds the ACK
number and window that belong to the receiving side): the Sender holds the connection
as its `Output`.

    RFC                                   here
    RFC 9293 3.3.1 SND.UNA, SND.NXT       the shared Tcb (tcb.py); only the Sender moves them
                                          once the handshake is done
    RFC 9293 3.7.4 Nagle                  send_queued()
    RFC 9293 3.8.6.2.1 sender SWS         send_queued(), on_persist_timeout()
    RFC 9293 3.8.6.1 zero window          zero_window(), on_persist_timeout()
    RFC 9293 3.10.7.4 fifth step          on_ack() (the recovery strategy's), acknowledge()
    RFC 6298 RTO and RTT                  rtt.py; take_rtt_sample(), transmit(), back_off()
    RFC 7323 4 RTTM (timestamps agreed)   take_rtt_sample(): one sample per ACK from TSecr
    RFC 5681 congestion control           congestion.py (the controller `cc`)
    RFC 5681 4.1 restart after idle       restart_if_idle()
    RFC 5681 3.2 / RFC 6582 NewReno       reno_recovery.py (no SACK)
    RFC 6675 + RFC 8985 RACK-TLP          sack_recovery.py (both SYNs carried SACK-permitted)
    RFC 1191 path MTU                     lower_mss()
    RFC 3168 6.1.2 ECN, the sender        ecn.py (`ecn`): transmit(), on_ack()

Two cursors. `tcb.snd_nxt` is exactly RFC 9293's SND.NXT (one past the highest sequence
number ever sent; it never moves back). `tx_nxt` says where the *next transmission*
starts: it equals SND.NXT except after a retransmission timeout without SACK (go back to
SND.UNA and resend under slow start, RFC 5681 3.1) and while probing a zero window. (BSD
calls these two snd_max and snd_nxt.)

The recovery strategy is chosen once, at the handshake (`start`): `RenoRecovery` counts
duplicate ACKs, `SackRecovery` reads the scoreboard and RACK's loss marks.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from ..wire.ipv4 import Ecn
from ..wire.seq import SeqNum
from ..wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment
from .buffers import NOTHING_QUEUED, SendBuffer
from .config import Congestion, TcpConfig
from .congestion import CongestionControl, Reno
from .cubic import Cubic
from .ecn import EcnState
from .recovery import Recovery
from .reno_recovery import RenoRecovery
from .rtt import RttEstimator, expected_samples
from .rules import Explainer, Rule
from .sack import NOTHING_IN_FLIGHT, Scoreboard, SentSegment
from .sack_recovery import SackRecovery
from .tcb import Tcb
from .timers import Timer, Timers
from .timestamps import Timestamps

ACK = int(TcpFlags.ACK)
FIN = int(TcpFlags.FIN)
PSH = int(TcpFlags.PSH)
SYN_RTO_AFTER_LOSS = 3.0  # RFC 6298 (5.7)
_MAX_HEADERS = 20 + 60  # an IPv4 header without options and the longest TCP header

CONTROLLERS: dict[Congestion, type[CongestionControl]] = {
    Congestion.NEWRENO: Reno,
    Congestion.CUBIC: Cubic,
}

class Output(Protocol):
    """Where the Sender's segments go: the connection, whose emit(seq, flags, payload,
    now) sends one segment with its ACK, window and timestamps; `ecn` is the segment's
    ECN codepoint (ECT(0) for new data when ECN is on). The object itself, not a bound
    method: one object fewer per connection (issue 13)."""

    def emit(
        self, seq: SeqNum, flags: int, payload: bytes, now: float,
        options: TcpOptions = NO_OPTIONS, *, ecn: Ecn = Ecn.NOT_ECT,
    ) -> None: ...


class Acked(NamedTuple):
    """What one cumulative ACK did (Sender.acknowledge)."""

    acked: int  # SEG.ACK - the old SND.UNA
    flight: int  # FlightSize before it: SND.NXT - the old SND.UNA
    freed: int  # bytes that left the send buffer
    # for the congestion controller (HyStart++ wants one per ACK): the RTT of the newest
    # segment it delivered that was sent only once (Karn), as RACK measures it
    rtt: float | None
    delivered: list[SentSegment]  # scoreboard entries it newly delivered (for RACK)


class Sender:
    """The send side of one TCB; see the module docstring."""

    __slots__ = (
        "board",
        "buf_seq",
        "buffer",
        "cc",
        "config",
        "ecn",
        "fin_queued",
        "last_sent_at",
        "max_packet",
        "mss",
        "nodelay",
        "out",
        "persist_backoff",
        "probes_unanswered",
        "recovery",
        "retries",
        "rtt",
        "rtt_sent_at",
        "rtt_seq",
        "stalled_since",
        "syn_retransmitted",
        "tcb",
        "timers",
        "timestamps",
        "tx_nxt",
        "urgent",
        "why",
    )

    def __init__(
        self, tcb: Tcb, config: TcpConfig, timers: Timers, out: Output, *, mss: int,
        now: float, why: Explainer | None = None,
    ) -> None:
        self.why = why  # who is told each rule applied (rules.py), or None: off
        self.tcb = tcb
        self.config = config
        self.timers = timers
        self.out = out
        self.buffer = NOTHING_QUEUED  # the shared empty one until something is written
        self.buf_seq = tcb.iss + 1  # sequence number of the send buffer's first byte
        self.tx_nxt = tcb.iss  # where the next transmission starts (module docstring)
        self.mss = mss  # Eff.snd.MSS, fixed by the peer's SYN (RFC 9293 3.7.1)
        self.max_packet = 0  # the link cuts super-segments up to this long (0: it cannot)
        self.fin_queued = False  # CLOSE was called: our FIN follows the queued data
        self.urgent = False  # urgent data sent and not yet acknowledged (SND.UP valid)
        self.nodelay = not config.nagle
        # what is in flight, segment by segment (sack.py); the shared empty one until then
        self.board = NOTHING_IN_FLIGHT
        self.rtt = RttEstimator(config)
        self.rtt_seq: SeqNum | None = None  # the timed segment ends here (one at a time)
        self.rtt_sent_at = 0.0
        self.last_sent_at = now  # when data (or a FIN) last went out (RFC 5681 4.1)
        self.cc: CongestionControl = Reno(mss)
        self.recovery: Recovery = RenoRecovery(self.buf_seq)  # until the handshake decides
        self.ecn: EcnState | None = None  # both SYNs agreed on ECN (RFC 3168; ecn.py)
        self.retries = 0  # consecutive retransmission timeouts (RFC 1122 4.2.3.5 R2)
        self.stalled_since = now  # when the unacknowledged head went out (TCP_USER_TIMEOUT)
        self.persist_backoff = 0
        self.probes_unanswered = 0  # zero-window or keep-alive probes without any reply
        self.syn_retransmitted = False
        self.timestamps: Timestamps | None = None  # RFC 7323, once both SYNs agreed (RTTM)

    # ---- the handshake -----------------------------------------------------------------

    def syn_sent(self, now: float) -> None:
        """Our SYN (or SYN,ACK) went out: it occupies ISS; time it unless it is a
        retransmission (Karn), and (re)arm the retransmission timer (RFC 6298 (5.1))."""
        tcb = self.tcb
        if tcb.snd_nxt == tcb.iss:
            tcb.snd_nxt = self.buf_seq  # ISS + 1, as one object with the buffer's start
            self.tx_nxt = tcb.snd_nxt
        if self.rtt_seq is None and not self.syn_retransmitted:
            self.rtt_seq = tcb.snd_nxt
            self.rtt_sent_at = now
        self.timers.arm(Timer.RETRANSMIT, now + self.rtt.rto)

    def syn_acked(
        self, ack: SeqNum, now: float, tsopt: tuple[int, int] | None = None
    ) -> None:
        """The peer acknowledged our SYN (with this TSopt): SND.UNA <- SEG.ACK, stop the
        timer."""
        tcb = self.tcb
        tcb.snd_una = ack
        self.take_rtt_sample(ack, now, tsecr=None if tsopt is None else tsopt[1])
        self.rtt_seq = None  # the SYN's timing is over, whichever way it was sampled
        self.retries = 0
        self.timers.cancel(Timer.RETRANSMIT)
        self.tx_nxt = tcb.snd_nxt

    def start(self, *, sack: bool, ecn: bool = False) -> None:
        """Both SYNs are acknowledged: congestion control for the agreed MSS, and the
        recovery strategy and ECN (RFC 3168 6.1.1) the SYNs agreed on (RFC 2018 2)."""
        # RFC 5681 3.1: after a lost SYN or SYN,ACK the initial window is one segment;
        # RFC 6298 (5.7): and the RTO starts at 3 s
        iw = self.mss if self.syn_retransmitted else self.config.initial_window_bytes(self.mss)
        if self.syn_retransmitted:
            self.rtt.at_least(SYN_RTO_AFTER_LOSS)
        self.cc = CONTROLLERS[self.config.congestion](self.mss, iw=iw)
        una = self.tcb.snd_una
        self.recovery = SackRecovery(una) if sack else RenoRecovery(self.buf_seq)
        self.retries = 0
        if ecn:
            self.ecn = EcnState(self.tcb.snd_nxt)
            if self.why is not None:
                self.why.decide(Rule.ECN_SETUP)

    def reset(self, tcb: Tcb) -> None:
        """A passive open's handshake failed: back to LISTEN with a fresh TCB."""
        self.tcb = tcb
        self.tx_nxt = tcb.iss
        self.board = NOTHING_IN_FLIGHT
        self.retries = 0
        self.rtt_seq = None

    # ---- SEND (RFC 9293 3.10.2) ----------------------------------------------------------

    @property
    def queued_end(self) -> SeqNum:
        """The sequence number after the last byte queued."""
        return self.buf_seq + len(self.buffer)

    @property
    def space(self) -> int:
        """How many more bytes the send buffer takes (the configuration's send_buffer)."""
        return self.config.send_buffer - len(self.buffer)

    @property
    def fin_acked(self) -> bool:
        return self.fin_queued and self.tcb.snd_una > self.buf_seq + len(self.buffer)

    def write(self, data: bytes | bytearray | memoryview, *, urgent: bool) -> int:
        """Queue what the send buffer takes; with `urgent`, SND.UP moves past it
        (RFC 9293 3.10.2, 3.8.5 MUST-62)."""
        buffer = self.buffer
        if buffer is NOTHING_QUEUED:
            if not data:
                return 0
            buffer = self.buffer = SendBuffer()  # this connection's own, while it holds data
        n = buffer.write(data, self.config.send_buffer)
        if urgent and n:
            self.tcb.snd_up = self.buf_seq + len(self.buffer)
            self.urgent = True
        return n

    def restart_if_idle(self, now: float) -> None:
        """RFC 5681 4.1: idle for more than an RTO, so slow start again."""
        tcb = self.tcb
        if tcb.snd_nxt == tcb.snd_una and now - self.last_sent_at > self.rtt.rto:
            cwnd = self.cc.cwnd
            self.cc.restart_after_idle()
            if self.why is not None:
                self.why.decide(Rule.RESTART_AFTER_IDLE, changed={"cwnd": (cwnd, self.cc.cwnd)},
                                idle=now - self.last_sent_at, rto=self.rtt.rto)

    # ---- output --------------------------------------------------------------------------

    def output(self, now: float) -> None:
        """Send what the windows allow: repairs first, then new data."""
        if self.tcb.snd_wnd == 0:
            self.zero_window(now)
            return
        self.recovery.repair(self, now)
        self.send_queued(now)
        tcb = self.tcb
        if tcb.snd_nxt != tcb.snd_una:
            self._keep_watch(now)

    def _keep_watch(self, now: float) -> None:
        """RFC 6298 5.1: while data or a FIN is outstanding a timer watches it. A zero
        window stops the retransmission timer (zero_window()); a window that then opens
        too little for any repair to fit, with nothing new to send, would otherwise leave
        no timer at all, and the connection would wait forever (found by the fuzzer)."""
        timers = self.timers
        if not (timers.is_armed(Timer.RETRANSMIT) or timers.is_armed(Timer.PERSIST)):
            timers.arm(Timer.RETRANSMIT, now + self.rtt.rto)

    def send_queued(self, now: float) -> None:
        """Segment the queued data by MSS within the window the recovery strategy allows,
        with sender SWS avoidance (RFC 9293 3.8.6.2.1) and Nagle (3.7.4); our FIN rides on
        the last data segment when it fits."""
        tcb = self.tcb
        mss = self.mss
        largest = self.largest_segment()
        end = self.buf_seq + len(self.buffer)  # sequence number after the queued data
        fin = self.fin_queued
        nxt = self.tx_nxt
        if end - nxt <= 0 and not (fin and nxt == end):
            self.timers.cancel(Timer.PERSIST)  # all sent (the FIN too, if any)
            return
        edge = self.recovery.send_edge(self, nxt)
        held = False
        while True:
            unsent = end - nxt
            usable = edge - nxt
            if unsent > 0:
                n = min(unsent, largest, usable)
                if n <= 0:
                    held = True
                    break
                if mss < n < unsent:
                    n -= n % mss  # a super-segment of whole MSS pieces: no runt inside
                with_fin = fin and n == unsent and usable > n
                if n < mss and nxt >= tcb.snd_nxt and not with_fin:
                    # new data, less than a full segment, no FIN to carry it:
                    # send only if it is all we have, or at least half the largest
                    # window the peer offered; and, with Nagle, nothing is in flight
                    if n < unsent and n < tcb.max_snd_wnd // 2:
                        if self.why is not None:
                            self.why.decide(Rule.SWS_HOLD, usable=n, max_snd_wnd=tcb.max_snd_wnd)
                        held = True
                        break
                    if not self.nodelay and tcb.snd_nxt != tcb.snd_una:
                        if self.why is not None:
                            self.why.decide(Rule.NAGLE_HOLD, queued=unsent, snd_una=tcb.snd_una,
                                            snd_nxt=tcb.snd_nxt)
                        held = True
                        break
                nxt = self.transmit(nxt, n, with_fin, now)
                continue
            if fin and unsent == 0 and usable > 0:
                nxt = self.transmit(nxt, 0, True, now)  # the FIN alone
            break
        if nxt != self.tx_nxt:
            self.recovery.after_new_data(self, now)
        self.tx_nxt = nxt
        if held and tcb.snd_nxt == tcb.snd_una:
            # data waits but no ACK will come to release it: the SWS override timer
            self.timers.arm_if_off(Timer.PERSIST, now + self._persist_interval())
        else:
            self.timers.cancel(Timer.PERSIST)

    def largest_segment(self) -> int:
        """The most payload one segment may carry: the MSS, or, where the link cuts
        super-segments (`max_packet`), as many whole MSS as fit in one IPv4 packet with
        the largest headers (20 + 60 bytes), so every piece but the last is full-sized."""
        mss = self.mss
        room = self.max_packet - _MAX_HEADERS
        return room // mss * mss if room >= 2 * mss else mss

    def zero_window(self, now: float) -> None:
        """SND.WND is zero: stop retransmitting into it and probe with the persist
        timer instead (RFC 9293 3.8.6.1; RFC 1122 4.2.2.17)."""
        tcb = self.tcb
        pending = self.buf_seq + len(self.buffer) + self.fin_queued - tcb.snd_una
        timers = self.timers
        if pending <= 0:
            timers.cancel(Timer.PERSIST)
            return
        # nothing beyond a zero window can be delivered: send it again once it opens
        if self.why is not None and not timers.is_armed(Timer.PERSIST):
            self.why.decide(Rule.ZERO_WINDOW, snd_wnd=0, pending=pending)
        self.recovery.go_back(self)
        timers.cancel(Timer.RETRANSMIT)
        timers.cancel(Timer.LOSS_PROBE)
        timers.cancel(Timer.REORDER)
        timers.arm_if_off(Timer.PERSIST, now + self._persist_interval())

    def retransmit_first(self, now: float) -> None:
        """Resend the first unacknowledged segment (fast retransmit, partial ACK)."""
        tcb = self.tcb
        una = tcb.snd_una
        end = self.buf_seq + len(self.buffer)
        n = max(0, min(self.mss, end - una, tcb.snd_nxt - una))
        fin = self.fin_queued and una + n == end and tcb.snd_nxt > end
        if n or fin:
            self.rtt_seq = None  # Karn's algorithm
            self.transmit(una, n, fin, now)

    def resend(self, start: SeqNum, end: SeqNum, now: float) -> None:
        """Send [start, end) of what was sent before again (our FIN if it lies inside)."""
        data_end = self.buf_seq + len(self.buffer)
        self.transmit(start, min(end, data_end) - start, end > data_end, now)

    def transmit(
        self, seq: SeqNum, n: int, fin: bool, now: float, *, probe: bool = False
    ) -> SeqNum:
        """Send n bytes of queued data starting at `seq` (plus our FIN); return the
        sequence number after it. New data advances SND.NXT and may be timed."""
        payload = self.buffer.peek(seq - self.buf_seq, n) if n else b""
        flags = ACK
        if fin:
            flags |= FIN
        elif n and seq + n == self.buf_seq + len(self.buffer):
            flags |= PSH  # the last of the queued data
        ecn = self.ecn
        if ecn is not None and n and seq >= self.tcb.snd_nxt and not probe:
            # RFC 3168 6.1.2, 6.1.5: new data is ECT(0) (never a retransmission or a
            # probe); the first after a reduction carries CWR
            cwr = ecn.take_cwr()
            if cwr and self.why is not None:
                self.why.decide(Rule.ECN_CWR_SENT, snd_nxt=seq)
            self.out.emit(seq, flags | cwr, payload, now, ecn=Ecn.ECT_0)
        else:
            self.out.emit(seq, flags, payload, now)
        self.recovery.sent(n + fin)
        self.last_sent_at = now
        end = seq + (n + fin)
        tcb = self.tcb
        board = self.board
        snd_nxt = tcb.snd_nxt
        if end > snd_nxt:
            if board is NOTHING_IN_FLIGHT:
                board = self.board = Scoreboard()  # this connection's own, while in flight
            if seq < snd_nxt:  # partly sent before
                board.resent(seq, snd_nxt, now)
                board.sent(snd_nxt, end, now)
            else:
                board.sent(seq, end, now)
                if self.rtt_seq is None and not probe and self.timestamps is None:
                    self.rtt_seq = end  # RFC 6298's timing (with timestamps, RTTM's)
                    self.rtt_sent_at = now
            tcb.snd_nxt = end
        else:
            board.resent(seq, end, now)
            if self.rtt_seq is not None and seq < self.rtt_seq:
                self.rtt_seq = None  # Karn: this range is now ambiguous
        if not probe:
            self.timers.arm_if_off(Timer.RETRANSMIT, now + self.rtt.rto)  # RFC 6298 (5.1)
        return end

    # ---- acknowledgments (RFC 9293 3.10.7.4 fifth step) --------------------------------

    def on_ack(self, seg: TcpSegment, wnd: int, now: float) -> int:
        """An acceptable ACK (SND.UNA =< SEG.ACK =< SND.NXT) with the peer's window `wnd`
        (scaled), before the window update: the recovery strategy reads it (and ECN's
        rules, RFC 3168 6.1.2, when on). Returns how many bytes left the send buffer."""
        if self.ecn is not None:
            return self.ecn.on_ack(self, seg, wnd, now)
        return self.recovery.on_ack(self, seg, wnd, now)

    def flight_size(self) -> int:
        """FlightSize for a reduction (RFC 5681 (4)): SND.NXT - SND.UNA, but never more
        than cwnd. What went out beyond cwnd, Limited Transmit sent (RFC 3042, or with
        SACK the pipe of RFC 6675, which leaves SACKed data out), and RFC 5681 3.2 (2)
        and RFC 6675 5 (4.2) say it MUST NOT count: a reduction must not grow cwnd."""
        return min(self.tcb.snd_nxt - self.tcb.snd_una, self.cc.cwnd)

    def acknowledge(self, seg: TcpSegment, now: float) -> Acked:
        """SND.UNA < SEG.ACK =< SND.NXT: "set SND.UNA <- SEG.ACK", drop the acknowledged
        data and its scoreboard entries, take an RTT sample (with timestamps, from the
        segment's TSecr)."""
        ack = seg.ack
        tcb = self.tcb
        if ack.value == tcb.snd_nxt.value:
            ack = tcb.snd_nxt  # all of it: SND.UNA is then SND.NXT's own object (issue 13)
        acked = ack - tcb.snd_una
        flight = tcb.snd_nxt - tcb.snd_una
        beyond = ack - self.buf_seq
        freed = min(beyond, len(self.buffer))
        if freed > 0:
            buffer = self.buffer
            buffer.consume(freed)
            if not buffer:
                self.buffer = NOTHING_QUEUED  # all acknowledged: let it go (issue 13)
            # the ACK's own number when it is the new start (one object, no addition)
            self.buf_seq = ack if freed == beyond else self.buf_seq + freed
        tcb.snd_una = ack
        recovery = self.recovery
        if not recovery.in_recovery and recovery.recover < ack:
            # RFC 6582's recover (RFC 6675's RecoveryPoint) is covered: it follows SND.UNA
            # (one object with it) until a recovery sets it again. Left behind, it would be
            # 2^31 behind after 2 GiB, where modular comparison takes it for a number ahead
            # of SND.UNA, and every recovery (and the fast path) would wait 2 GiB more
            recovery.recover = ack
        if self.urgent and ack >= tcb.snd_up:
            self.urgent = False  # the urgent data is delivered (RFC 9293 3.8.5)
        if self.tx_nxt < ack:
            self.tx_nxt = ack
        board = self.board
        delivered = board.acked(ack)
        if board is not NOTHING_IN_FLIGHT and board.empty:
            self.board = NOTHING_IN_FLIGHT  # nothing in flight: let it go (issue 13)
        tsopt = seg.options.timestamps
        sample = self.take_rtt_sample(ack, now, flight, None if tsopt is None else tsopt[1])
        sent_once = [s.xmit_ts for s in delivered if not s.retransmitted]
        if sent_once:
            sample = now - max(sent_once)
        self.retries = 0
        self.persist_backoff = 0
        return Acked(acked, flight, max(freed, 0), sample, delivered)

    def restart_timer(self, ack: SeqNum, now: float) -> None:
        """RFC 6298 (5.2)/(5.3): all data acknowledged, stop the timer; else restart it."""
        if ack == self.tcb.snd_nxt:
            self.timers.cancel(Timer.RETRANSMIT)
        else:
            self.timers.arm(Timer.RETRANSMIT, now + self.rtt.rto)

    def is_duplicate_ack(self, seg: TcpSegment, wnd: int) -> bool:
        """RFC 5681 2: data outstanding, no text, no SYN/FIN, SEG.ACK = SND.UNA and the
        same window as before. Never while the peer's window is zero (we are probing)."""
        tcb = self.tcb
        return (
            seg.ack == tcb.snd_una
            and not seg.payload
            and not int(seg.flags) & (int(TcpFlags.SYN) | FIN)
            and tcb.snd_nxt != tcb.snd_una
            and wnd == tcb.snd_wnd
            and wnd != 0
        )

    def take_rtt_sample(
        self, ack: SeqNum, now: float, flight: int = 0, tsecr: int | None = None
    ) -> float | None:
        """RFC 6298 (2.2)/(2.3) for the one timed segment, if this ACK covers it; with
        timestamps, for this ACK and its TSecr (it advanced SND.UNA over `flight` bytes
        in flight)."""
        if self.timestamps is not None:
            return self._rttm_sample(now, flight, tsecr)
        if self.rtt_seq is not None and ack >= self.rtt_seq:
            sample = now - self.rtt_sent_at
            self.rtt.sample(sample)
            self.rtt_seq = None
            if self.why is not None:
                self.why.decide(Rule.RTT_SAMPLE, sample=sample, srtt=self.rtt.srtt)
            return sample
        return None

    def _rttm_sample(self, now: float, flight: int, tsecr: int | None) -> float | None:
        """RFC 7323 4.1: an ACK that advances SND.UNA and echoes our TSval is a sample,
        a retransmission's too (its ACK echoes the TSval it was resent with, 4.3 (C)), so
        Karn's rule is not needed. Many samples per round trip would shorten RFC 6298's
        history, so each one weighs 1/ExpectedSamples (Appendix G)."""
        assert self.timestamps is not None
        sample = None if tsecr is None else self.timestamps.rtt_sample(
            tsecr, now, self.config.rto_max)
        if sample is None:
            return None
        self.rtt.sample(sample, expected_samples(flight, self.mss))
        if self.why is not None:
            self.why.decide(Rule.RTTM_SAMPLE, sample=sample, srtt=self.rtt.srtt)
        return sample

    # ---- timeouts ----------------------------------------------------------------------

    def back_off(self) -> None:
        """A retransmission timeout: one more retry, RFC 6298 (5.5), and Karn's rule."""
        self.retries += 1
        self.rtt.back_off()  # RFC 6298 (5.5)
        self.rtt_seq = None  # Karn: no sample from a retransmitted segment

    def on_retransmit_timeout(self, now: float) -> None:
        """RFC 6298 (5.4)-(5.6) for data: the recovery strategy reacts (RFC 5681 3.1's
        ssthresh and loss window, then resend from SND.UNA); output() retransmits the
        first segment (5.4) and restarts the timer with the doubled RTO (5.6)."""
        self.timers.cancel(Timer.LOSS_PROBE)
        self.timers.cancel(Timer.REORDER)
        self.recovery.on_rto(self, now)
        if self.ecn is not None:
            self.ecn.reduced(self.tcb.snd_nxt)  # RFC 3168 6.1.2: CWR after any reduction

    def on_persist_timeout(self, now: float) -> bool:
        """Probe a zero window (RFC 9293 3.8.6.1), or the SWS override (3.8.6.2.1).
        False: the peer stopped answering even our probes, give up (RFC 1122 4.2.2.17
        only forbids giving up while it still answers)."""
        if self.probes_unanswered >= self.config.max_retries:
            return False
        self.probes_unanswered += 1
        self.persist_backoff += 1
        tcb = self.tcb
        end = self.buf_seq + len(self.buffer)
        if tcb.snd_wnd == 0:
            # "transmit at least one octet of new data (if available), or retransmit"
            if self.why is not None:
                self.why.decide(Rule.PERSIST_PROBE, snd_wnd=0, probes=self.probes_unanswered)
            una = tcb.snd_una
            if end - una > 0:
                self.transmit(una, 1, False, now, probe=True)
            elif self.fin_queued and una == end:
                self.transmit(una, 0, True, now, probe=True)
            return True
        # The override timeout: send what the window allows even if it is small
        nxt = self.tx_nxt
        n = min(end - nxt, tcb.snd_una + tcb.snd_wnd - nxt, self.mss)
        if n > 0:
            fin = self.fin_queued and nxt + n == end
            self.tx_nxt = self.transmit(nxt, n, fin, now)
        return True

    def _persist_interval(self) -> float:
        cfg = self.config
        base = max(self.rtt.rto, cfg.persist_min)
        return min(base * (1 << min(self.persist_backoff, 16)), cfg.rto_max)

    # ---- path MTU (RFC 1191) -------------------------------------------------------------

    def lower_mss(self, mss: int) -> bool:
        """The path MTU fell: send at most `mss` from now on. True if it did fall: the
        caller then resends at once, at the new size and without slow start, what was
        too big (RFC 1191 6.5). Never below config.min_mss, as for the peer's MSS option
        (SynOptions.take)."""
        mss = max(mss, self.config.min_mss)
        if mss >= self.mss:
            return False
        self.mss = mss
        self.cc.smss = mss
        self.recovery.mss_lowered(self)
        return True
