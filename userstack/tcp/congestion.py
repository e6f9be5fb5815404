"""Congestion control: RFC 5681 (slow start, congestion avoidance, fast retransmit)
with the NewReno fast recovery of RFC 6582, or, when SACK is agreed, the loss
recovery of RFC 6675 driven by RACK-TLP's loss marks (rack.py, RFC 8985 9.3).

Byte counting, not ACK counting: cwnd grows by the bytes an ACK covers, capped at
one SMSS per ACK in slow start (RFC 5681 3.1, the L = 1*SMSS limit of RFC 3465).
"""

from __future__ import annotations

from ..wire.seq import SeqNum

DUPACK_THRESHOLD = 3  # RFC 5681 3.2


def initial_window(smss: int) -> int:
    """IW, RFC 5681 3.1 (equation 1; RFC 3390)."""
    if smss > 2190:
        return 2 * smss
    if smss > 1095:
        return 3 * smss
    return 4 * smss


class NewReno:
    __slots__ = (
        "cwnd", "dupacks", "in_recovery", "partial_acks", "recover", "sack", "smss", "ssthresh"
    )

    def __init__(
        self, smss: int, iss: SeqNum, *, iw: int | None = None, sack: bool = False
    ) -> None:
        self.smss = smss
        self.cwnd = initial_window(smss) if iw is None else iw
        # RFC 5681 3.1: "arbitrarily high" initial ssthresh
        self.ssthresh = 1 << 30
        self.dupacks = 0
        self.in_recovery = False
        self.partial_acks = 0  # partial ACKs in this recovery (RFC 6582 3.2 (5) "Impatient")
        # SACK agreed: losses come from the scoreboard (RFC 6675), not from duplicate ACKs
        self.sack = sack
        # RFC 6582 3.2 (1): recover starts at the ISS. We keep it one past RFC 6582's
        # "highest sequence number transmitted", so "covers recover" is `ack >= recover`.
        # With SACK it is RFC 6675's RecoveryPoint (HighData when recovery began).
        self.recover = iss + 1

    @property
    def send_limit(self) -> int:
        """How far past SND.UNA we may send: cwnd, plus RFC 3042 Limited Transmit (one
        new segment for each of the first two duplicate ACKs, cwnd itself unchanged),
        so a small window still gets the three duplicates fast retransmit needs."""
        if not self.in_recovery and self.dupacks < DUPACK_THRESHOLD:
            return self.cwnd + self.dupacks * self.smss
        return self.cwnd

    def recovering(self, snd_una: SeqNum) -> bool:
        """In fast recovery, or still resending what was in flight at an RTO (RFC 6675 5.1:
        no new recovery until the cumulative ACK passes RecoveryPoint)."""
        return self.in_recovery or snd_una < self.recover

    def on_new_ack(self, ack: SeqNum, acked: int, flight_after: int) -> bool:
        """New data acknowledged. True on a partial ACK in NewReno fast recovery: the
        caller must retransmit the first unacknowledged segment (RFC 6582 3.2 (5))."""
        self.dupacks = 0
        smss = self.smss
        if self.in_recovery:
            if ack >= self.recover:
                self.in_recovery = False
                if not self.sack:
                    # RFC 6582 3.2 (3) full acknowledgment, option (1): deflate
                    self.cwnd = min(self.ssthresh, max(flight_after, smss) + smss)
                return False
            self.partial_acks += 1
            if self.sack:
                return False  # RFC 6675 5: cwnd stays at ssthresh; `pipe` paces the sending
            # RFC 6582 3.2 (5) partial acknowledgment: deflate by the amount acked,
            # add back one SMSS if at least one SMSS was acked
            self.cwnd = max(self.cwnd - acked, smss) + (smss if acked >= smss else 0)
            return True
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, smss)  # RFC 5681 (2), slow start
        else:
            self.cwnd += max(1, smss * smss // self.cwnd)  # RFC 5681 (3), congestion avoidance
        return False

    def restart_after_idle(self) -> None:
        """RFC 5681 4.1: nothing sent for more than an RTO, so the ACK clock is gone:
        start again from the restart window, cwnd = min(RW, cwnd) with RW = min(IW, cwnd)."""
        self.cwnd = min(self.cwnd, initial_window(self.smss))

    def on_duplicate_ack(self, ack: SeqNum, flight: int, snd_nxt: SeqNum) -> bool:
        """A duplicate ACK (RFC 5681 2). True: fast retransmit now (RFC 5681 3.2 (2)-(3))."""
        self.dupacks += 1
        if self.in_recovery:
            self.cwnd += self.smss  # RFC 6582 3.2 (4): inflate for each additional dup ACK
            return False
        if self.dupacks != DUPACK_THRESHOLD:
            return False
        if ack < self.recover:
            # RFC 6582 3.2 (2): the ACK does not cover recover, so these duplicates may
            # come from segments we retransmitted after a timeout: no fast retransmit
            return False
        # RFC 5681 (4) / RFC 6582 3.2 (2)
        self.ssthresh = max(flight // 2, 2 * self.smss)
        self.recover = snd_nxt
        self.cwnd = self.ssthresh + DUPACK_THRESHOLD * self.smss
        self.in_recovery = True
        self.partial_acks = 0
        return True

    def enter_recovery(self, flight: int, snd_nxt: SeqNum) -> None:
        """SACK loss recovery begins (RFC 6675 5 (4)): RecoveryPoint = HighData,
        ssthresh = cwnd = FlightSize / 2 (at least 2 SMSS, RFC 5681 eq. (4))."""
        self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.ssthresh
        self.recover = snd_nxt
        self.in_recovery = True
        self.partial_acks = 0

    def on_loss_repaired(self, flight: int) -> None:
        """A tail loss probe's retransmission repaired a loss (RFC 8985 7.4.2): react
        to that loss as to any other, halving the window, without a recovery episode."""
        self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.ssthresh

    def on_timeout(self, flight: int, snd_nxt: SeqNum, *, first: bool) -> None:
        """The retransmission timer expired (RFC 5681 3.1, equation 4; RFC 6582 3.2)."""
        if first:
            # a segment retransmitted by the timer again: keep ssthresh (RFC 5681 3.1)
            self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.smss  # the loss window, LW
        self.dupacks = 0
        self.in_recovery = False
        self.recover = snd_nxt  # RFC 6582 3.2 / RFC 6675 5.1: RecoveryPoint = HighData
