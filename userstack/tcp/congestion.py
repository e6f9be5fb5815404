"""Congestion control: how big the congestion window may be (RFC 5681).

A controller owns cwnd and ssthresh and is told four things: new data was acknowledged
outside loss recovery (`on_ack`), a loss was detected (`on_loss`), the retransmission
timer expired (`on_rto`), and the connection was idle for an RTO (`restart_after_idle`);
and, rarely, that a loss was not one after all (`undo_state` saved before the reduction,
`undo` when D-SACKs show it was spurious: undo.py).
How losses are found and repaired (fast retransmit, NewReno's window inflation, RFC 6675's
pipe) is the recovery strategy's business (reno_recovery.py, sack_recovery.py), not the
controller's: a second algorithm is one new class with these four methods.

`Reno` is RFC 5681's slow start and congestion avoidance, with byte counting (RFC 3465):
cwnd grows by the bytes an ACK covers, capped at one SMSS per ACK in slow start (the
L = 1*SMSS limit). With segmentation offload one ACK may cover a whole super-segment (a
train of up to 44 full-sized segments the link cut); it counts as the ACKs its pieces
would have drawn from a receiver that ACKs every second full-sized segment (RFC 5681 4.2),
so a train grows cwnd as its pieces would have, not by one SMSS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache

UndoState = tuple[float | None, ...]  # a controller's own variables, for undo


@cache
def initial_window(smss: int) -> int:
    """IW, RFC 5681 3.1 (equation 1; RFC 3390). Cached: connections of one MSS share
    the int, which an idle connection's cwnd still is (32 bytes each, issue 13)."""
    if smss > 2190:
        return 2 * smss
    if smss > 1095:
        return 3 * smss
    return 4 * smss


def halved(flight: int, smss: int) -> int:
    """RFC 5681 equation (4): ssthresh = max(FlightSize / 2, 2*SMSS)."""
    return max(flight // 2, 2 * smss)


class CongestionControl(ABC):
    """The interface every congestion controller implements; see the module docstring."""

    __slots__ = ("cwnd", "smss", "ssthresh")

    def __init__(self, smss: int, *, iw: int | None = None) -> None:
        self.smss = smss
        self.cwnd = initial_window(smss) if iw is None else iw
        self.ssthresh = 1 << 30  # RFC 5681 3.1: "arbitrarily high" initial ssthresh

    @abstractmethod
    def on_ack(self, acked: int, now: float, *, rtt: float | None) -> None:
        """`acked` new bytes were cumulatively acknowledged, outside loss recovery."""

    @abstractmethod
    def on_loss(self, flight: int, now: float) -> None:
        """A loss was detected (fast retransmit, SACK recovery, a repairing loss probe)
        with `flight` bytes outstanding: reduce."""

    @abstractmethod
    def on_rto(self, flight: int, now: float, *, first: bool) -> None:
        """The retransmission timer expired; `first` unless the same data timed out before."""

    def undo_state(self) -> UndoState:
        """What `undo` restores, saved just before a reduction for a loss (RFC 9438
        4.9.2; undo.py)."""
        return (self.cwnd, self.ssthresh)

    def undo(self, state: UndoState) -> None:
        """The reduction `state` was saved before was spurious (undo.py): cwnd back to
        at least what it was, ssthresh back up, as Linux undoes Reno's."""
        cwnd, ssthresh = state[0], state[1]
        assert cwnd is not None and ssthresh is not None
        self.cwnd = max(self.cwnd, int(cwnd))
        self.ssthresh = max(self.ssthresh, int(ssthresh))

    def restart_after_idle(self) -> None:
        """RFC 5681 4.1: nothing sent for more than an RTO, so the ACK clock is gone:
        start again from the restart window, cwnd = min(RW, cwnd) with RW = min(IW, cwnd)."""
        self.cwnd = min(self.cwnd, initial_window(self.smss))


class Reno(CongestionControl):
    """RFC 5681 3.1: slow start below ssthresh, congestion avoidance above it."""

    __slots__ = ()

    def on_ack(self, acked: int, now: float, *, rtt: float | None) -> None:
        smss = self.smss
        acks = acked // (2 * smss) or 1  # one, unless it covers a train (module docstring)
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, acks * smss)  # RFC 5681 (2), slow start
        else:
            # RFC 5681 (3), congestion avoidance
            self.cwnd += acks * max(1, smss * smss // self.cwnd)

    def on_loss(self, flight: int, now: float) -> None:
        self.ssthresh = halved(flight, self.smss)  # RFC 5681 (4)
        self.cwnd = self.ssthresh

    def on_rto(self, flight: int, now: float, *, first: bool) -> None:
        if first:
            # a segment retransmitted by the timer again: keep ssthresh (RFC 5681 3.1)
            self.ssthresh = halved(flight, self.smss)
        self.cwnd = self.smss  # the loss window, LW
