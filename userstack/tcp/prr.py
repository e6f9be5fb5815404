"""Proportional Rate Reduction (RFC 6937): how much to send on each ACK of a loss recovery.

When a loss starts recovery, the congestion controller picks the window to end it with,
ssthresh (half the flight for Reno, 0.7 of it for CUBIC). RFC 6675 gets there by sending
nothing at all until `pipe` has drained below the new cwnd, then everything at once: half a
window of silence, then a burst. PRR spreads the reduction over the whole round trip
instead. While pipe is above ssthresh it sends in proportion to what the receiver reports
delivered, ssthresh / RecoverFS of it (one segment per two delivered, for Reno), so when
the flight at the start of recovery (RecoverFS) has all been delivered, exactly ssthresh
has been sent. When losses have pushed pipe below ssthresh, a Reduction Bound lets pipe
climb back to it:

- PRR-CRB, the conservative bound: send no more than was delivered (packet conservation);
- PRR-SSRB, the slow start bound (the RFC's recommendation, and the default here): one
  SMSS more than was delivered on each ACK, so pipe grows as in slow start.

RFC 6937 section 3, in bytes:

    sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out     if pipe > ssthresh
    sndcnt = MIN(ssthresh - pipe, limit)                              otherwise
      limit = prr_delivered - prr_out                                 (CRB)
      limit = MAX(prr_delivered - prr_out, DeliveredData) + SMSS      (SSRB)

CEIL rounds up to whole segments, as the RFC's examples count and Linux does: a segment
may go as soon as any part of it is due, where byte-exact CEIL would hold it back an ACK
longer (a sender never sends part of a segment to keep to a byte count).

The object is the arithmetic only: the sender tells it what each ACK delivered
(DeliveredData: the advance of SND.UNA plus the bytes newly SACKed) with the pipe after it,
and what it then sent. Which bytes to send (a retransmission or new data) is the recovery's
choice (RFC 6675 NextSeg). RFC 9937 has since revised PRR; this is the RFC 6937 version.
"""

from __future__ import annotations


class Prr:
    """One recovery episode's PRR state (RFC 6937 section 3)."""

    __slots__ = ("conservative", "prr_delivered", "prr_out", "recover_fs", "smss", "ssthresh")

    def __init__(
        self, ssthresh: int, recover_fs: int, smss: int, *, conservative: bool = False
    ) -> None:
        """At the start of recovery: `ssthresh` as the controller just set it, and
        `recover_fs` = SND.NXT - SND.UNA, the flight size."""
        self.ssthresh = ssthresh
        self.recover_fs = max(recover_fs, 1)
        self.smss = smss
        self.conservative = conservative
        self.prr_delivered = 0  # bytes delivered to the receiver during recovery
        self.prr_out = 0  # bytes sent during recovery

    def on_ack(self, delivered: int, pipe: int) -> int:
        """An ACK reported `delivered` bytes (DeliveredData) and left `pipe` bytes in the
        network (RFC 6675's estimate): how many bytes may go out now (sndcnt, >= 0)."""
        self.prr_delivered += delivered
        if pipe > self.ssthresh:
            # proportional rate reduction; CEIL to whole segments, -(-a // b) in integers
            segments = -(-self.prr_delivered * self.ssthresh // (self.recover_fs * self.smss))
            sndcnt = segments * self.smss - self.prr_out
        else:
            banked = self.prr_delivered - self.prr_out
            # PRR-CRB: only what was delivered; PRR-SSRB: one SMSS more
            limit = banked if self.conservative else max(banked, delivered) + self.smss
            sndcnt = min(self.ssthresh - pipe, limit)
        return max(sndcnt, 0)

    def on_sent(self, nbytes: int) -> None:
        """Data sent or resent during recovery (prr_out += data sent)."""
        self.prr_out += nbytes
