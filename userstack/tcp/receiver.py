"""The receiving half of a connection: the receive buffer and when and what to ACK.

How to read this beside the RFCs
--------------------------------
    RFC                                   here
    RFC 9293 3.10.7.4 seventh step        take_text(): into the buffer, out-of-order held
    RFC 9293 3.8.6.2.2 receiver SWS       window_field(), window_update_due()
    RFC 7323 2.2-2.4 window scaling       window_field() (never shrink, round up)
    RFC 1122 4.2.3.2, RFC 5681 4.2        ack_delayed(): delay, but ACK every second
                                          full-sized segment; at once for out-of-order data
    RFC 5681 4.2 (Linux's quick-ACK mode) _quick_ack(): every segment at once at the start
                                          and after idle (config.quickack), fin_received()
    RFC 2018 4 SACK blocks, RFC 2883      sack_option(), the buffer's dsack
    RFC 9293 3.8.5 urgent data            `urgent`: in urgent mode until RCV.UP is read

The state machine (connection.py) decides *whether* text is processed (the state, the
sequence check); the Receiver does the processing and keeps the ACK policy, and the
connection's emit() tells it when an ACK went out (`ack_sent`).
"""

from __future__ import annotations

from ..wire.seq import SeqNum
from ..wire.tcp import TcpOptions
from .buffers import ReceiveBuffer
from .config import TcpConfig
from .rtt import RttEstimator
from .rules import Explainer, Rule
from .tcb import Tcb
from .timers import Timer, Timers

# RFC 2018 3: a SACK option of n blocks takes 8n + 2 bytes; with two NOPs, 4 fit in 40,
# 3 beside the 12 bytes of timestamps (RFC 7323). They ride on pure ACKs only, so a
# full-sized data segment never outgrows the MTU.
MAX_SACK_BLOCKS = 4
MAX_SACK_BLOCKS_WITH_TIMESTAMPS = 3


class Receiver:
    """The receive side of one TCB; see the module docstring."""

    __slots__ = (
        "ack_now", "buffer", "config", "eof", "last_data_at", "quick", "rtt", "sack_blocks",
        "timers", "unacked", "urgent", "why",
    )

    def __init__(
        self, config: TcpConfig, timers: Timers, rtt: RttEstimator, *,
        why: Explainer | None = None,
    ) -> None:
        self.why = why  # who is told each rule applied (rules.py), or None: off
        self.buffer = ReceiveBuffer(config.recv_buffer)
        # read, not copied (an idle connection's memory, issue 13): delayed_ack; mss, what we
        # advertised (a full-sized segment to us); quickack, segments to quick-ACK on
        # entering the mode (0: off). None of them changes on an open connection.
        self.config = config
        self.rtt = rtt  # the connection's RTO tells an idle gap (quick-ACK mode)
        self.quick = 0  # quick-ACKs left (Linux's icsk_ack.quick)
        self.last_data_at: float | None = None  # when in-order data last came (lrcvtime)
        self.timers = timers
        self.sack_blocks = 0  # how many SACK blocks an ACK may carry; 0: SACK not agreed
        self.ack_now = False  # an ACK is owed and must go out with the next output
        self.unacked = 0  # data segments received since our last ACK
        self.eof = False  # the peer's FIN was reached in sequence
        self.urgent = False  # "urgent mode": urgent data up to RCV.UP not yet read

    def take_text(self, tcb: Tcb, data_seq: SeqNum, payload: bytes, now: float) -> int:
        """The seventh step's work: put the text into the buffer (held if ahead of
        RCV.NXT), advance RCV.NXT, and decide the ACK. Returns the bytes now readable."""
        buffer = self.buffer
        rel = data_seq - tcb.rcv_nxt
        window = tcb.rcv_wnd  # the window this segment came into
        had_gaps = buffer.has_gaps
        delivered = buffer.insert(rel, payload, tcb.rcv_wnd)
        if delivered:
            tcb.rcv_nxt = tcb.rcv_nxt + delivered
            tcb.rcv_wnd = max(0, tcb.rcv_wnd - delivered)
        if rel != 0 or had_gaps or delivered < len(payload):
            # RFC 5681 4.2: ACK at once for out-of-order data and for data filling a gap
            # (and for anything we could not take)
            if self.why is not None:
                self.why.decide(Rule.TEXT_OUT_OF_ORDER, seg_seq=data_seq,
                                rcv_nxt=tcb.rcv_nxt - delivered, delivered=delivered)
            self.ack_now = True
        else:  # a segment longer than the MSS is a coalesced train (TSO/GRO): its count
            if self.why is not None:
                self.why.decide(Rule.TEXT_IN_ORDER, seg_seq=data_seq, seg_len=len(payload))
            config = self.config
            if config.quickack and self._quick_ack(window, now):
                self.ack_now = True
            else:
                self.ack_delayed(now, segments=len(payload) // config.mss or 1)
        return delivered

    def _quick_ack(self, window: int, now: float) -> bool:
        """Linux's quick-ACK mode (tcp_event_data_recv, tcp_incr_quickack): the first data
        of a connection, and data after an idle gap longer than the RTO (the peer is
        likely restarting from a small window), enter it for min(quickack, window / 2
        MSS, at least 2) segments; each is ACKed at once. RFC 5681 4.2 asks for no delay
        beyond its limits, so ACKing sooner is always allowed; it speeds up the peer's
        slow start, which grows by ACKs."""
        last, self.last_data_at = self.last_data_at, now
        if last is None or now - last > self.rtt.rto:
            config = self.config
            self.quick = max(self.quick, min(config.quickack, max(2, window // (2 * config.mss))))
        if not self.quick:
            return False
        self.quick -= 1
        if self.why is not None:
            self.why.decide(Rule.ACK_QUICK, quick_acks_left=self.quick)
        return True

    def fin_received(self, now: float) -> None:
        """The peer's FIN in ESTABLISHED: delay the ACK, so that our own FIN, if the
        application closes soon, carries it (the "three-way close" of real peers). With
        quick-ACKs on (Linux's profile), a FIN before any data is ACKed at once: Linux's
        delayed-ACK timeout (icsk_ack.ato) is 0 until the first data segment sets it, and
        its tcp_fin() leaves quick-ACK mode ("pingpong"), so a FIN after data waits."""
        if self.config.quickack and self.last_data_at is None:
            if self.why is not None:
                self.why.decide(Rule.ACK_QUICK, quick_acks_left=self.quick)
            self.ack_now = True
        else:
            self.ack_delayed(now, force_timer=True)

    def ack_delayed(self, now: float, *, force_timer: bool = False, segments: int = 1) -> None:
        """RFC 1122 4.2.3.2 / RFC 5681 4.2: delay the ACK, but ACK at least every second
        full-sized segment, and never wait longer than config.delayed_ack. `segments`:
        how many full-sized segments the data was (a coalesced train counts in MSS units)."""
        delay = self.config.delayed_ack
        if delay <= 0:
            self.ack_now = True
            return
        if not force_timer:
            self.unacked += segments
            if self.unacked >= 2:
                if self.why is not None:
                    self.why.decide(Rule.ACK_EVERY_SECOND, unacked_segments=self.unacked)
                self.ack_now = True
                return
        self.timers.arm_if_off(Timer.DELAYED_ACK, now + delay)
        if self.why is not None:
            self.why.decide(Rule.ACK_DELAYED, delayed_ack=delay, unacked_segments=self.unacked)

    def ack_sent(self) -> None:
        """An ACK of RCV.NXT went out: nothing is owed any more."""
        self.ack_now = False
        self.timers.cancel(Timer.DELAYED_ACK)
        self.unacked = 0

    def window_update_due(self, tcb: Tcb, mss: int) -> bool:
        """After a read: must an ACK announce the window now, or can it ride on the next
        ACK the peer's data draws? Now only if the window we would offer (what the field
        can say: at most 65535 units) moves the right edge by min(buffer/2, MSS) (receiver
        SWS avoidance, RFC 9293 3.8.6.2.2, RFC 1122 4.2.3.3) *and* is at least twice the
        window the peer has left. While the peer still has half of it, it is not held up:
        its data keeps coming and every second full-sized segment draws an ACK (RFC 5681
        4.2) that carries the new edge, so a separate update would be one more packet for
        nothing (as Linux decides in tcp_cleanup_rbuf). A peer held up by a small or zero
        window is told at once."""
        offer = self._offer(tcb.rcv_wscale)
        return offer - tcb.rcv_wnd >= self._sws_step(mss) and offer >= 2 * tcb.rcv_wnd

    def _offer(self, shift: int) -> int:
        """The window the free buffer allows, as the window field can carry it (scaled
        by `shift`, rounded down, at most 0xFFFF units), in bytes."""
        return min(self.buffer.space >> shift, 0xFFFF) << shift

    def _sws_step(self, mss: int) -> int:
        """The least the right edge may move: min(Fr * RCV.BUFF, Eff.snd.MSS), Fr = 1/2
        (RFC 1122 4.2.3.3; RFC 9293 3.8.6.2.2)."""
        return min(self.buffer.capacity // 2, mss)

    def window_field(self, tcb: Tcb, *, syn: bool, mss: int) -> int:
        """The window field to send, and RCV.WND to match.

        Receiver SWS avoidance (RFC 9293 3.8.6.2.2): the right edge RCV.NXT+RCV.WND only
        moves right once the window the field can offer exceeds it by min(buffer/2, MSS);
        it never moves left. A SYN's window is never scaled (RFC 7323 2.2).
        """
        if syn:
            field = min(self.buffer.space, 0xFFFF)
            tcb.rcv_wnd = field
            return field
        shift = tcb.rcv_wscale
        cur = tcb.rcv_wnd
        keep = (cur + (1 << shift) - 1) >> shift  # round up: never shrink (RFC 7323 2.4)
        offer = self._offer(shift)
        field = max(offer >> shift, keep) if offer - cur >= self._sws_step(mss) else keep
        tcb.rcv_wnd = field << shift
        return field

    def agreed(self, *, sack: bool, timestamps: bool) -> None:
        """What the SYNs agreed: SACK-permitted in both (RFC 2018 2), then as many blocks
        as fit beside timestamps (RFC 7323 3.2) if both carried TSopt too."""
        if sack:
            self.sack_blocks = MAX_SACK_BLOCKS_WITH_TIMESTAMPS if timestamps else MAX_SACK_BLOCKS

    @property
    def sack_due(self) -> bool:
        """The next ACK must carry SACK blocks (out-of-order data held, or a D-SACK)."""
        buffer = self.buffer
        return self.sack_blocks > 0 and (buffer.has_gaps or buffer.dsack is not None)

    def sack_option(self, tcb: Tcb) -> TcpOptions:
        """The SACK blocks of the out-of-order data we hold (RFC 2018 4: the block of the
        latest segment first)."""
        buffer = self.buffer
        base = tcb.rcv_nxt - buffer.next  # the sequence number of stream offset 0
        return TcpOptions(sack_blocks=tuple(
            (base + left, base + right) for left, right in buffer.sack_blocks(self.sack_blocks)
        ))
