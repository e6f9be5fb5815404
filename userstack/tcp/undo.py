"""Undoing a spurious congestion event: the loss was only reordering (RFC 9438 4.9.2).

A segment overtaken on the path looks lost: RACK marks it, SACK recovery resends it and the
controller reduces cwnd. If the original arrives after all, the receiver gets the data
twice and says so with a D-SACK block (RFC 2883): the first SACK block of its ACK names
data below SEG.ACK. When every segment resent in one recovery comes back D-SACKed, no
segment of it was lost, and the reduction was spurious (RFC 3708's D-SACK detection). RFC
9438 4.9.2 then lets the sender restore what it saved before reducing: cwnd and ssthresh,
and CUBIC's W_max, K, t_epoch and W_est (`CongestionControl.undo_state` / `undo`).

`UndoEpisode` is that detection for one recovery: the controller's state as it was before
the reduction, and the ranges resent since, each struck off as a D-SACK covers it. The
verdict waits until the recovery has ended (SackRecovery): the last hole may yet turn out
to be a real loss. Not covered: spurious timeouts (F-RTO, RFC 5682, would be needed; an
RTO ends the episode with no undo), NewReno without SACK (no D-SACK), and a duplicate the
network made of a retransmitted segment, which a D-SACK cannot tell from a spurious
retransmission (RFC 3708 5): that undoes a reduction a real loss deserved, once.
"""

from __future__ import annotations

from ..wire.seq import SeqNum

Span = tuple[SeqNum, SeqNum]


class UndoEpisode:
    """One recovery's evidence; see the module docstring."""

    __slots__ = ("resent", "state", "undecided")

    def __init__(self, state: tuple[float | None, ...]) -> None:
        self.state = state  # the controller's undo_state() before the reduction
        self.undecided: list[Span] = []  # resent and not (yet) reported as duplicates
        self.resent = 0  # segments resent in this recovery

    def on_resend(self, start: SeqNum, end: SeqNum) -> None:
        self.resent += 1
        self.undecided.append((start, end))

    def on_dsack(self, left: SeqNum, right: SeqNum) -> None:
        """A D-SACK block: the receiver got [left, right) twice. Strike it off."""
        kept: list[Span] = []
        for start, end in self.undecided:
            if right <= start or end <= left:
                kept.append((start, end))
                continue
            if start < left:
                kept.append((start, left))
            if right < end:
                kept.append((right, end))
        self.undecided = kept

    @property
    def spurious(self) -> bool:
        """Everything resent in the recovery arrived twice: nothing of it was lost."""
        return self.resent > 0 and not self.undecided
