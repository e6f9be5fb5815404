"""Explicit Congestion Notification for TCP (RFC 3168 6.1): negotiation and the ECE/CWR echo.

A router whose queue is filling can mark a packet Congestion Experienced (CE, in the IP
header's ECN field) instead of dropping it, if the packet says its transport understands
(ECT). TCP then has to carry the news back to the sender, which reacts as to a loss, but
without having lost anything:

- the receiver, on a CE-marked data packet, sets ECE on every ACK it sends from then on,
  until a segment arrives with CWR set (6.1.3): the echo survives lost ACKs;
- the sender, on an ACK with ECE, reduces cwnd as for a loss, at most once per window of
  data (6.1.2), and sets CWR on the next new data segment it sends, to stop the echo.

Negotiation (6.1.1): the SYN carries ECE and CWR (an "ECN-setup SYN"); a host that agrees
answers with ECE alone in its SYN-ACK. Only then do both send data as ECT(0). Not ECT, ever:
SYNs, pure ACKs, retransmissions and window probes (6.1.1, 6.1.4-6.1.6); the connection
decides per segment (`Sender`), the stack writes the TOS byte.
"""

from __future__ import annotations

from ..wire.seq import SeqNum
from ..wire.tcp import TcpFlags

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


class Ecn:
    """One connection's ECN state, once both SYNs agreed on ECN."""

    __slots__ = ("cwr_pending", "ece_pending", "recover", "reductions")

    def __init__(self, snd_nxt: SeqNum) -> None:
        self.ece_pending = False  # receiver: echo ECE on every ACK until CWR arrives
        self.cwr_pending = False  # sender: set CWR on the next new data segment
        # sender: no second reduction for ECE until SND.UNA reaches this (once per window)
        self.recover = snd_nxt
        self.reductions = 0

    # -- the receiver's half (6.1.3)

    def on_arrival(self, *, ce: bool, cwr: bool) -> None:
        """A data segment arrived, CE-marked or not, with or without CWR. CWR stops the
        echo; a CE mark on the same packet starts it again."""
        if cwr:
            self.ece_pending = False
        if ce:
            self.ece_pending = True

    def ack_flags(self) -> int:
        """The flags to add to an ACK we send: ECE while the echo is on."""
        return ECE if self.ece_pending else 0

    # -- the sender's half (6.1.2)

    def on_ece(self, snd_una: SeqNum, snd_nxt: SeqNum) -> bool:
        """An ACK with ECE arrived. True: reduce cwnd now (the first ECE of this window)."""
        if snd_una < self.recover:
            return False  # already reduced for the data in flight
        self.recover = snd_nxt
        self.cwr_pending = True
        self.reductions += 1
        return True

    def take_cwr(self) -> int:
        """The flags for a new data segment being sent: CWR once after each reduction."""
        if not self.cwr_pending:
            return 0
        self.cwr_pending = False
        return CWR
