"""RACK-TLP loss detection (RFC 8985), used when SACK is negotiated.

RACK ("Recent ACKnowledgment", RFC 8985 6) detects losses by time, not by counting
duplicate ACKs: once a segment sent *later* than segment S has been delivered (ACKed
or SACKed), S is deemed lost if it is still unacknowledged a reordering window
(RACK.reo_wnd) after that. This works with a window of two segments, where three
duplicate ACKs never come, and it sees a lost retransmission (a later-sent segment
was delivered, the retransmission was not), which RFC 6675 cannot.

TLP ("Tail Loss Probe", RFC 8985 7) covers the case where nothing later is delivered
because the lost segments were the last ones: after a probe timeout PTO ~= 2*SRTT
with no ACK, send one segment (new data, or the last segment again) to draw an ACK
whose SACK blocks let RACK find the losses, instead of waiting for the RTO.

The names are the RFC's: RACK.xmit_ts, RACK.end_seq, RACK.rtt, RACK.reo_wnd,
RACK.min_RTT, RACK.fack, RACK.reord; TLP.end_seq, TLP.is_retrans. Not implemented:
the D-SACK adaptation of the reordering window (RFC 8985 6.2 step 4: reo_wnd_mult
stays 1), and RACK.min_RTT is the minimum over the connection's life, not windowed.
"""

from __future__ import annotations

from ..wire.seq import SeqNum
from .config import TlpTiming
from .sack import Scoreboard, SentSegment

DUP_THRESH = 3  # RFC 8985 6.2 step 4 (RFC 6675's DupThresh)
WCDELACKT = 0.2  # RFC 8985 7.2: worst-case delayed ACK timer
# RFC 8985 7.2's formula has no floor: with SRTT near 0 (a LAN, virtual time) the probe
# would go out with the data it probes for. An ACK cannot be "overdue" sooner than a
# timer can tell, so the PTO is at least the floor of the TLP draft RFC 8985 grew from
# (draft-dukkipati-tcpm-tcp-loss-probe-01 2.1: "PTO = max(2 * SRTT, 10ms)").
PTO_MIN = 0.010
# Linux (tcp_schedule_loss_probe) adds TCP_TIMEOUT_MIN_US to 2*SRTT with several
# segments out, and tcp_rto_min with one (its delayed-ACK allowance, WCDelAckT's role)
LINUX_PTO_SLACK = 0.002
PTO_NO_RTT = 1.0  # RFC 8985 7.2 before any RTT sample (Linux: TCP_TIMEOUT_INIT, 1 s)


class Rack:
    __slots__ = ("end_seq", "fack", "min_rtt", "reord", "rtt", "xmit_ts")

    def __init__(self, snd_una: SeqNum) -> None:
        self.xmit_ts = 0.0  # RACK.xmit_ts: sent time of the most recently sent delivered segment
        self.end_seq = snd_una  # RACK.end_seq: its end
        self.rtt = 0.0  # RACK.rtt: the RTT measured from that segment
        self.min_rtt: float | None = None  # RACK.min_RTT
        self.fack = snd_una  # RACK.fack: the highest sequence number delivered
        self.reord = False  # RACK.reord: reordering has been seen

    def delivered(self, segments: list[SentSegment], now: float) -> None:
        """RFC 8985 6.2 steps 2 and 3 for each newly ACKed or SACKed segment."""
        for s in segments:
            # Step 2: RACK_update()
            rtt = now - s.xmit_ts
            if s.retransmitted and (self.min_rtt is None or rtt < self.min_rtt):
                # without timestamps, a too-fast ACK of a retransmission may be for the
                # original transmission: no RTT from it (but step 3 still applies)
                pass
            else:
                self.rtt = rtt
                if self.min_rtt is None or rtt < self.min_rtt:
                    self.min_rtt = rtt
                if sent_after(s.xmit_ts, s.end, self.xmit_ts, self.end_seq):
                    self.xmit_ts = s.xmit_ts
                    self.end_seq = s.end
            # Step 3: a segment below RACK.fack delivered late, never retransmitted, was
            # reordered, not lost: from now on wait a reordering window before a retransmit
            if s.end > self.fack:
                self.fack = s.end
            elif s.end < self.fack and not s.retransmitted:
                self.reord = True

    def reo_wnd(self, board: Scoreboard, in_recovery: bool, srtt: float | None) -> float:
        """Step 4: RACK.reo_wnd, zero until reordering is seen (in recovery, or with
        DupThresh segments SACKed: RACK.segs_sacked), then min(RACK.min_RTT / 4, SRTT)."""
        if not self.reord and (in_recovery or board.sacked_segments >= DUP_THRESH):
            return 0.0
        base = (self.min_rtt or 0.0) / 4
        return min(base, srtt) if srtt is not None else base

    def detect_loss(self, board: Scoreboard, now: float, reo_wnd: float) -> float:
        """Step 5: RACK_detect_loss(). Mark lost every unacknowledged segment sent
        before RACK.xmit_ts and older than RACK.rtt + reo_wnd; return how long until
        the next one would be (the RACK reordering timer), or 0."""
        timeout = 0.0
        horizon = self.rtt + reo_wnd
        for s in board.segments:
            if s.sacked or s.lost:
                continue  # delivered, or lost and not yet retransmitted
            if sent_after(s.xmit_ts, s.end, self.xmit_ts, self.end_seq):
                continue  # not sent before the most recently delivered segment
            remaining = s.xmit_ts + horizon - now
            if remaining <= 0:
                board.mark_lost(s)
            elif remaining > timeout:
                timeout = remaining
        return timeout

    def mark_losses_on_rto(self, board: Scoreboard, now: float, reo_wnd: float) -> None:
        """RFC 8985 6.3: on RTO, the first unacknowledged segment is lost, and so is
        every other one sent more than RACK.rtt + reo_wnd ago."""
        horizon = self.rtt + reo_wnd
        for i, s in enumerate(board.segments):
            if i == 0 or s.xmit_ts + horizon - now <= 0:
                board.mark_lost(s)


def sent_after(t1: float, seq1: SeqNum, t2: float, seq2: SeqNum) -> bool:
    """RFC 8985 6.2 RACK_sent_after(): by time, then (same time) by sequence."""
    return t1 > t2 or (t1 == t2 and seq1 > seq2)


def probe_timeout(
    srtt: float | None, flight_segments: int, timing: TlpTiming, rto_min: float
) -> float:
    """The probe timeout, or 1 s before any RTT sample. The caller caps it at the RTO's
    expiry (RFC 8985 7.2, as Linux).

    RFC8985: PTO = 2*SRTT, + WCDelAckT with a single segment in flight; at least PTO_MIN.
    LINUX:   PTO = 2*SRTT + 2 ms, or 2*SRTT + rto_min with a single segment in flight.
    """
    if srtt is None:
        return PTO_NO_RTT
    if timing is TlpTiming.LINUX:
        return 2 * srtt + (rto_min if flight_segments == 1 else LINUX_PTO_SLACK)
    pto = 2 * srtt
    if flight_segments == 1:
        pto += WCDELACKT
    return max(pto, PTO_MIN)
