"""Loss recovery without SACK: fast retransmit and NewReno (RFC 5681 3.2, RFC 6582).

Three duplicate ACKs (RFC 5681 2) mean the segment at SND.UNA was lost:

    (2) ssthresh = max(FlightSize / 2, 2*SMSS)        the controller's on_loss()
    (3) retransmit it; cwnd = ssthresh + 3*SMSS       "inflate" for the three that left
    (4) each further duplicate ACK: cwnd += SMSS
    a partial ACK (below `recover`): deflate by the amount acked, add back one SMSS,
        retransmit the next hole (RFC 6582 3.2 (5))
    a full ACK (covers `recover`): cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS)
        (RFC 6582 3.2 (3), option 1)

The retransmission timer restarts only on the first partial ACK (RFC 6582 3.2 (5), the
"Impatient" variant): a long recovery that needs many partial ACKs gives way to the RTO
rather than crawl one hole per RTT. Before three duplicates arrive, Limited Transmit
(RFC 3042) sends one new segment for each of the first two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.seq import SeqNum
from ..wire.tcp import TcpSegment
from .recovery import Recovery
from .rules import Rule
from .timers import Timer

if TYPE_CHECKING:
    from .sender import Sender

DUPACK_THRESHOLD = 3  # RFC 5681 3.2


class RenoRecovery(Recovery):
    """NewReno fast recovery; see the module docstring."""

    __slots__ = ("dupacks", "partial_acks")

    def __init__(self, after_syn: SeqNum) -> None:
        # RFC 6582 3.2 (1): recover starts at the ISS (here ISS + 1, the first data byte:
        # the Sender's own object for it, none made)
        super().__init__(after_syn)
        self.dupacks = 0
        self.partial_acks = 0  # partial ACKs in this recovery (RFC 6582 3.2 (5) "Impatient")

    def on_ack(self, sender: Sender, seg: TcpSegment, wnd: int, now: float) -> int:
        ack = seg.ack
        tcb = sender.tcb
        if ack > tcb.snd_una:
            result = sender.acknowledge(seg, now)
            partial = self._on_new_ack(sender, ack, result.acked, result.flight, result.rtt, now)
            if ack == tcb.snd_nxt or not self.in_recovery or self.partial_acks <= 1:
                sender.restart_timer(ack, now)
            if partial:
                sender.retransmit_first(now)  # RFC 6582 3.2 (5): partial ACK
            return result.freed
        if sender.is_duplicate_ack(seg, wnd) and self._on_duplicate_ack(sender, ack, now):
            sender.retransmit_first(now)  # RFC 5681 3.2 (3): fast retransmit
        return 0

    def _on_new_ack(
        self, sender: Sender, ack: SeqNum, acked: int, flight: int, rtt: float | None, now: float
    ) -> bool:
        """New data acknowledged. True on a partial ACK in fast recovery: the caller must
        retransmit the first unacknowledged segment (RFC 6582 3.2 (5))."""
        self.dupacks = 0
        cc = sender.cc
        if not self.in_recovery:
            cwnd = cc.cwnd
            cc.on_ack(acked, now, rtt=rtt)
            if sender.why is not None:
                sender.why.decide(
                    Rule.SLOW_START if cwnd < cc.ssthresh else Rule.CONGESTION_AVOIDANCE,
                    changed={"cwnd": (cwnd, cc.cwnd)}, acked=acked, ssthresh=cc.ssthresh,
                )
            return False
        smss = cc.smss
        if ack >= self.recover:
            # RFC 6582 3.2 (3) full acknowledgment, option (1): deflate
            self.in_recovery = False
            cc.cwnd = min(cc.ssthresh, max(flight - acked, smss) + smss)
            return False
        # RFC 6582 3.2 (5) partial acknowledgment: deflate by the amount acked, add back
        # one SMSS if at least one SMSS was acked
        self.partial_acks += 1
        cc.cwnd = max(cc.cwnd - acked, smss) + (smss if acked >= smss else 0)
        if sender.why is not None:
            sender.why.decide(Rule.PARTIAL_ACK, seg_ack=ack, recover=self.recover)
        return True

    def _on_duplicate_ack(self, sender: Sender, ack: SeqNum, now: float) -> bool:
        """A duplicate ACK (RFC 5681 2). True: fast retransmit now (RFC 5681 3.2 (2)-(3))."""
        self.dupacks += 1
        cc = sender.cc
        if self.in_recovery:
            cc.cwnd += cc.smss  # RFC 6582 3.2 (4): inflate for each additional dup ACK
            return False
        if self.dupacks != DUPACK_THRESHOLD:
            return False
        if ack < self.recover:
            # RFC 6582 3.2 (2): the ACK does not cover recover, so these duplicates may
            # come from segments we retransmitted after a timeout: no fast retransmit
            return False
        tcb = sender.tcb
        cwnd = cc.cwnd
        cc.on_loss(sender.flight_size(), now)  # RFC 5681 (4) / RFC 6582 3.2 (2)
        self.recover = tcb.snd_nxt
        cc.cwnd = cc.ssthresh + DUPACK_THRESHOLD * cc.smss
        if sender.why is not None:
            sender.why.decide(Rule.FAST_RETRANSMIT, changed={"cwnd": (cwnd, cc.cwnd)},
                              dupacks=self.dupacks, snd_una=tcb.snd_una, ssthresh=cc.ssthresh)
        self.in_recovery = True
        self.partial_acks = 0
        return True

    def send_edge(self, sender: Sender, nxt: SeqNum) -> SeqNum:
        tcb = sender.tcb
        cwnd = sender.cc.cwnd
        if nxt >= tcb.snd_nxt and not self.in_recovery and self.dupacks < DUPACK_THRESHOLD:
            # RFC 3042 Limited Transmit: one new segment for each of the first two
            # duplicate ACKs, cwnd itself unchanged (not for going back N)
            cwnd += self.dupacks * sender.cc.smss
        return tcb.snd_una + min(tcb.snd_wnd, cwnd)

    def repair(self, sender: Sender, now: float) -> None:
        """Nothing: without SACK the only repairs are fast retransmit and partial ACKs."""

    def sent(self, nbytes: int) -> None:
        """Nothing to count: NewReno's window inflation paces the recovery."""

    def after_new_data(self, sender: Sender, now: float) -> None:
        """Nothing: there is no tail loss probe without SACK."""

    def on_timer(self, kind: Timer, sender: Sender, now: float) -> None:
        """Nothing: no timers of its own (RACK and TLP need SACK)."""

    def go_back(self, sender: Sender) -> None:
        sender.tx_nxt = sender.tcb.snd_una  # go back N

    def mss_lowered(self, sender: Sender) -> None:
        sender.tx_nxt = sender.tcb.snd_una  # go back N, as after a timeout

    def on_rto(self, sender: Sender, now: float) -> None:
        self.dupacks = 0
        super().on_rto(sender, now)
