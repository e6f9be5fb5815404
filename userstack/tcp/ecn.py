"""Explicit Congestion Notification for TCP (RFC 3168 6.1): negotiation and the ECE/CWR echo.

A router whose queue is filling can mark a packet Congestion Experienced (CE, in the IP
header's ECN field) instead of dropping it, if the packet says its transport understands
(ECT). TCP then has to carry the news back to the sender, which reacts as to a loss, but
without having lost anything:

- the receiver, on a CE-marked data packet, sets ECE on every ACK it sends from then on,
  until a segment arrives with CWR set (6.1.3): the echo survives lost ACKs. The first
  mark is ACKed at once, not after the delayed-ACK timer: RFC 5681 4.2 allows an ACK at
  any time, and the sender should hear of congestion a round trip sooner, not a delayed
  ACK later (Linux leaves delayed ACKs for the same reason; RFC 8257 3.2 asks it of DCTCP);
- the sender, on an ACK with ECE, reduces cwnd as for a loss, through the congestion
  controller's `on_loss`, but retransmits nothing, at most once per window of data
  (6.1.2): an ECE whose ACK does not go beyond what was in flight at the last reduction
  (`recover`, SND.NXT then) reports the same congestion. It sets CWR on the next new data
  segment it sends, after any reduction (a loss or a timeout too: "for any reason").
  An ACK with ECE never grows cwnd ("SHOULD NOT increase").

Negotiation (6.1.1): the SYN carries ECE and CWR (an "ECN-setup SYN"); a host that agrees
answers with ECE alone in its SYN-ACK. Only then do both send data as ECT(0). Not ECT, ever:
SYNs, pure ACKs, retransmissions and window probes (6.1.1, 6.1.4-6.1.6); `Sender.transmit`
decides per segment and sets `TcpSegment.ecn`, the packet builders write it into the TOS
byte (or the IPv6 traffic class). Whether we ask, or only agree, is `TcpConfig.ecn`
(`EcnMode`); an ECN-setup SYN that goes unanswered is resent without ECE and CWR, and the
connection then does without ECN (6.1.1.1: a middlebox may drop such SYNs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.ipv4 import Ecn
from ..wire.seq import SeqNum
from ..wire.tcp import TcpFlags, TcpSegment
from .config import EcnMode
from .rules import Explainer, Rule

if TYPE_CHECKING:
    from .receiver import Receiver
    from .sender import Sender

ECE = int(TcpFlags.ECE)
CWR = int(TcpFlags.CWR)
SYN = int(TcpFlags.SYN)
ACK = int(TcpFlags.ACK)


def is_ecn_setup_syn(flags: int) -> bool:
    """RFC 3168 6.1.1: a SYN (no ACK) with both ECE and CWR set."""
    return flags & (SYN | ACK | ECE | CWR) == SYN | ECE | CWR


def is_ecn_setup_syn_ack(flags: int) -> bool:
    """RFC 3168 6.1.1: a SYN-ACK with ECE set and CWR clear."""
    return flags & (SYN | ACK | ECE | CWR) == SYN | ACK | ECE


def syn_flags(mode: EcnMode, *, again: bool, why: Explainer | None) -> int:
    """ECE and CWR for our SYN: an ECN-setup SYN if we ask (`EcnMode.ON`), but not when
    the SYN is sent `again`: the first may have met a middlebox that drops ECN-setup
    SYNs, so retransmissions go without (RFC 3168 6.1.1.1, as Linux's tcp_ecn_fallback)."""
    if mode is not EcnMode.ON:
        return 0
    if again:
        if why is not None:
            why.decide(Rule.ECN_SYN_FALLBACK)
        return 0
    return ECE | CWR


def agreed(mode: EcnMode, flags: int, *, asked: bool) -> bool:
    """The peer's SYN (or SYN-ACK, `flags` with ACK) arrived: do both sides now use ECN?
    A SYN-ACK agrees only with ECE alone, and only if our last SYN asked; a SYN asks with
    ECE and CWR, and we agree unless ECN is off (RFC 3168 6.1.1)."""
    if flags & ACK:
        return asked and is_ecn_setup_syn_ack(flags)
    return mode is not EcnMode.OFF and is_ecn_setup_syn(flags)


class EcnState:
    """One connection's ECN state, once both SYNs agreed on ECN (`Sender.ecn`)."""

    __slots__ = ("cwr_pending", "ece_pending", "recover", "reductions", "seen")

    def __init__(self, snd_nxt: SeqNum) -> None:
        self.ece_pending = False  # receiver: echo ECE on every ACK until CWR arrives
        self.seen = False  # receiver: a data packet marked ECT or CE arrived (`ss`: ecnseen)
        self.cwr_pending = False  # sender: set CWR on the next new data segment
        # sender: no second reduction for ECE until SND.UNA passes this (once per window);
        # None once it has (then a number left behind cannot wrap round to look ahead)
        self.recover: SeqNum | None = snd_nxt
        self.reductions = 0  # cwnd reductions for ECE (not counting losses)

    # -- the receiver's half (6.1.3)

    def on_arrival(self, *, ce: bool, cwr: bool) -> bool:
        """A data segment arrived, CE-marked or not, with or without CWR. CWR stops the
        echo; a CE mark on the same packet starts it again. True: the echo starts now."""
        if cwr:
            self.ece_pending = False
        if ce and not self.ece_pending:
            self.ece_pending = True
            return True
        return False

    def data_arrives(self, seg: TcpSegment, receiver: Receiver, why: Explainer | None) -> None:
        """The seventh step, for a segment with text: CWR and CE (see on_arrival); the
        first CE mark is ACKed at once (module docstring)."""
        cwr = bool(int(seg.flags) & CWR)
        if not self.seen and seg.ecn is not Ecn.NOT_ECT:
            self.seen = True  # as Linux's TCP_ECN_SEEN, for TcbInfo.ecn_seen
        if why is not None and cwr and self.ece_pending:
            why.decide(Rule.ECN_CWR_RECEIVED, seg_seq=seg.seq)
        if self.on_arrival(ce=seg.ecn is Ecn.CE, cwr=cwr):
            if why is not None:
                why.decide(Rule.ECN_CE_ECHO, seg_seq=seg.seq)
            receiver.ack_now = True

    def ack_flags(self) -> int:
        """The flags to add to an ACK we send: ECE while the echo is on."""
        return ECE if self.ece_pending else 0

    # -- the sender's half (6.1.2)

    def on_ece(self, snd_una: SeqNum, snd_nxt: SeqNum) -> bool:
        """An ACK with ECE arrived (SND.UNA is after it). True: reduce cwnd now, the first
        ECE for data sent after the last reduction. The ACKs of data that was in flight
        then still carry ECE until our CWR reaches the peer: they must not count again
        (as Linux, which holds its CWR state until an ACK goes beyond `recover`)."""
        if self.recover is not None and snd_una <= self.recover:
            return False  # already reduced for the data in flight
        self.reduced(snd_nxt)
        self.reductions += 1
        return True

    def reduced(self, snd_nxt: SeqNum) -> None:
        """cwnd was reduced, for any reason (ECE, a loss, a timeout): CWR on the next new
        data, and no reduction for ECE before the data in flight now is acknowledged."""
        self.recover = snd_nxt
        self.cwr_pending = True

    def take_cwr(self) -> int:
        """The flags for a new data segment being sent: CWR once after each reduction."""
        if not self.cwr_pending:
            return 0
        self.cwr_pending = False
        return CWR

    def on_ack(self, sender: Sender, seg: TcpSegment, wnd: int, now: float) -> int:
        """`Sender.on_ack` with ECN on: the recovery strategy's ACK processing, then the
        ECE rules of the module docstring. Returns the bytes that left the send buffer."""
        recovery, cc = sender.recovery, sender.cc
        cwnd, flight, recovering = cc.cwnd, sender.flight_size(), recovery.in_recovery
        freed = recovery.on_ack(sender, seg, wnd, now)
        if self.recover is not None and sender.tcb.snd_una > self.recover:
            self.recover = None  # the window of the last reduction is acknowledged
        if recovery.in_recovery and not recovering:
            self.reduced(sender.tcb.snd_nxt)  # a loss reduction: CWR follows it too
        elif int(seg.flags) & ECE:
            self._echo_arrives(sender, cwnd, flight, now)
        return freed

    def _echo_arrives(self, sender: Sender, cwnd: int, flight: int, now: float) -> None:
        """An ACK with ECE: reduce as for a loss, once per window (6.1.2). `cwnd` and
        `flight` are from before the ACK: the congestion it reports met that flight (so
        NewReno halves cwnd, as 6.1.2 says), and an ECE never grows cwnd."""
        tcb, cc, why, recovery = sender.tcb, sender.cc, sender.why, sender.recovery
        grown = cc.cwnd  # after the ACK's own growth, which an ECE takes back
        if not recovery.in_recovery:  # (in a loss recovery PRR or NewReno set cwnd)
            cc.cwnd = min(cc.cwnd, cwnd)
        # in (or just after) a loss recovery, its reduction covers this window
        if recovery.recovering(tcb.snd_una) or not self.on_ece(tcb.snd_una, tcb.snd_nxt):
            if why is not None:
                why.decide(Rule.ECN_ECE_IGNORED, changed=None if grown == cc.cwnd else {
                    "cwnd": (grown, cc.cwnd)}, snd_una=tcb.snd_una, recover=self.recover)
            return
        ssthresh = cc.ssthresh
        cc.on_loss(flight, now)
        recovery.undo = None  # a real congestion signal: no undoing past it
        if why is not None:
            why.decide(Rule.ECN_REDUCE, changed={
                "cwnd": (grown, cc.cwnd), "ssthresh": (ssthresh, cc.ssthresh)
            }, flight=flight, recover=tcb.snd_nxt)
