"""Loss recovery: how the sender finds lost segments and repairs them.

Two strategies, chosen once at the handshake (Sender.start), behind this one interface:

- `RenoRecovery` (reno_recovery.py): without SACK. Three duplicate ACKs mean a loss:
  fast retransmit, then NewReno's fast recovery (RFC 5681 3.2, RFC 6582), with Limited
  Transmit (RFC 3042) before it.
- `SackRecovery` (sack_recovery.py): when both SYNs carried SACK-permitted (RFC 2018).
  The scoreboard says what arrived, RACK (RFC 8985 6) says by time what is lost, the tail
  loss probe (RFC 8985 7) draws out the ACK that shows it, and RFC 6675 paces the repair
  by `pipe`.

The congestion controller (congestion.py) decides how much cwnd shrinks on a loss and how
it grows; a strategy tells it when (`cc.on_loss`, `cc.on_ack`, `cc.on_rto`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ..wire.seq import SeqNum
from ..wire.tcp import TcpSegment
from .rules import Rule
from .timers import Timer
from .undo import UndoEpisode

if TYPE_CHECKING:
    from .sender import Sender


class Recovery(ABC):
    """The points where finding and repairing losses differs; see the module docstring."""

    __slots__ = ("in_recovery", "recover", "undo")

    def __init__(self, recover: SeqNum) -> None:
        self.in_recovery = False  # in fast recovery (RFC 6582) / loss recovery (RFC 6675)
        # RFC 6582's `recover`, RFC 6675's RecoveryPoint. We keep it one past the highest
        # sequence number transmitted when recovery began, so "covers recover" is
        # `ack >= recover`.
        self.recover = recover
        # the last recovery's evidence that it was spurious (undo.py; SACK recovery only)
        self.undo: UndoEpisode | None = None

    def recovering(self, snd_una: SeqNum) -> bool:
        """In recovery, or still resending what was in flight at an RTO (RFC 6675 5.1:
        no new recovery until the cumulative ACK passes RecoveryPoint)."""
        return self.in_recovery or snd_una < self.recover

    @abstractmethod
    def on_ack(self, sender: Sender, seg: TcpSegment, wnd: int, now: float) -> int:
        """An acceptable ACK, before the window update (`wnd` is its scaled window).
        Returns the bytes that left the send buffer."""

    @abstractmethod
    def send_edge(self, sender: Sender, nxt: SeqNum) -> SeqNum:
        """How far a transmission starting at `nxt` may go: the peer's window and the
        congestion window, as this strategy counts what is in flight."""

    @abstractmethod
    def repair(self, sender: Sender, now: float) -> None:
        """Before new data goes out: retransmit what is known lost (if the strategy
        keeps such a list)."""

    @abstractmethod
    def after_new_data(self, sender: Sender, now: float) -> None:
        """New data just went out."""

    @abstractmethod
    def sent(self, nbytes: int) -> None:
        """`nbytes` of data (or a FIN) were sent or resent (PRR counts them)."""

    @abstractmethod
    def go_back(self, sender: Sender) -> None:
        """Everything in flight must be sent again (a zero window)."""

    @abstractmethod
    def mss_lowered(self, sender: Sender) -> None:
        """The MSS fell (RFC 1191): what was sent at the old size must be resent."""

    def on_rto(self, sender: Sender, now: float) -> None:
        """The retransmission timer expired (RFC 5681 3.1, RFC 6582 3.2, RFC 6675 5.1):
        the controller takes the loss window, recovery ends with RecoveryPoint = HighData,
        and everything in flight is resent."""
        tcb = sender.tcb
        cc = sender.cc
        cwnd, ssthresh = cc.cwnd, cc.ssthresh
        cc.on_rto(tcb.snd_nxt - tcb.snd_una, now, first=sender.retries == 1)
        if sender.why is not None:
            sender.why.decide(Rule.CC_TIMEOUT, changed={
                "cwnd": (cwnd, cc.cwnd), "ssthresh": (ssthresh, cc.ssthresh)
            }, flight=tcb.snd_nxt - tcb.snd_una)
        self.in_recovery = False
        self.recover = tcb.snd_nxt
        self.undo = None  # a timeout is not undone (that needs F-RTO, RFC 5682)
        self.go_back(sender)

    @abstractmethod
    def on_timer(self, kind: Timer, sender: Sender, now: float) -> None:
        """A timer of this strategy's own expired (RACK's and TLP's, with SACK)."""
