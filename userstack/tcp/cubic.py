"""CUBIC congestion control (RFC 9438), with HyStart++ (RFC 9406) for the first slow start.

Reno grows cwnd by one segment per round trip, so on a long fat path it takes minutes to
refill the window a single loss halved. CUBIC grows it as a function of the time since the
last reduction instead, a cubic centred on W_max, the window where the loss happened:

    W_cubic(t) = C * (t - K)^3 + W_max                        (RFC 9438 figure 1)
    K = cubic_root((W_max - cwnd_epoch) / C)                   (figure 2)

in segments and seconds. Just after a loss the curve climbs fast (concave region), flattens
out around W_max at t = K, where the last loss was, and then probes beyond it ever faster
(convex region). Where Reno would be ahead (short RTTs, small windows) CUBIC follows an
estimate of Reno's window, W_est, instead (the Reno-friendly region, 4.3), so it is never
less aggressive than the standard.

Units: the interface speaks bytes (cwnd, ssthresh, acked), the RFC's formulas speak
segments; `w_cubic` and `k` take and give segments, and the controller converts at the edge.
Growth below one byte per ACK is carried over (`_carry`), so integer cwnd loses nothing.

What is not here: the undo of a spurious reduction (RFC 9438 4.9, which needs spurious-loss
detection the sender does not have), and pacing (so HyStart++ uses L = 8).
"""

from __future__ import annotations

import math

from .congestion import CongestionControl, UndoState, initial_window
from .hystart import HyStartPlusPlus, Phase

C = 0.4  # RFC 9438 5: the aggressiveness of the cubic, segments / s^3
BETA_CUBIC = 0.7  # RFC 9438 4.6: the multiplicative decrease factor
# RFC 9438 4.3: the additive increase that makes W_est match Reno's average window
# with beta_cubic instead of Reno's 0.5: 3 * (1 - 0.7) / (1 + 0.7) = 0.529...
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)


def k(w_max: float, cwnd_epoch: float) -> float:
    """RFC 9438 figure 2, in segments: the time the cubic takes to climb back to W_max.
    Negative when cwnd_epoch is above W_max; cube roots of negatives are real."""
    gap = (w_max - cwnd_epoch) / C
    return math.copysign(abs(gap) ** (1 / 3), gap)


def w_cubic(t: float, w_max: float, k_: float) -> float:
    """RFC 9438 figure 1, in segments: the window t seconds into the congestion
    avoidance stage."""
    return C * (t - k_) ** 3 + w_max


class Cubic(CongestionControl):
    """One connection's CUBIC state, behind the `CongestionControl` interface.

    Recovery (NewReno's inflation, RFC 6675's pipe, PRR) belongs to the recovery objects:
    this class sees new data acknowledged outside recovery (`on_ack`), a loss (`on_loss`),
    and timeouts (`on_rto`).
    """

    __slots__ = (
        "_after_rto", "_carry", "_rtt", "cwnd_epoch", "cwnd_prior", "fast_convergence",
        "hystart", "k", "t_epoch", "w_est", "w_max",
    )

    def __init__(
        self,
        smss: int,
        *,
        iw: int | None = None,
        hystart: bool = True,
        fast_convergence: bool = True,
    ) -> None:
        super().__init__(smss, iw=iw)
        self.fast_convergence = fast_convergence
        self.hystart = HyStartPlusPlus(smss, self.cwnd) if hystart else None
        # RFC 9438 4.1's variables, in bytes; t_epoch None: no congestion avoidance
        # stage has begun since the last change of phase
        self.w_max = 0.0
        self.cwnd_prior = 0.0
        self.cwnd_epoch = 0.0
        self.w_est = 0.0
        self.k = 0.0
        self.t_epoch: float | None = None
        self._after_rto = False
        self._carry = 0.0
        self._rtt = 0.0

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def on_ack(self, acked: int, now: float, *, rtt: float | None) -> None:
        """`acked` bytes of new data acknowledged, outside recovery."""
        if rtt is not None:
            self._rtt = rtt
        if self.in_slow_start:
            self._slow_start(acked, rtt)
            return
        if self.t_epoch is None:
            self._begin_epoch(now)
        self._congestion_avoidance(acked, now)

    def _slow_start(self, acked: int, rtt: float | None) -> None:
        hystart = self.hystart
        if hystart is None or hystart.phase is Phase.DONE:
            self.cwnd += min(acked, self.smss)  # RFC 5681 (2), L = 1 SMSS (RFC 3465)
            return
        growth = hystart.on_ack(acked, rtt, self.cwnd)
        self.cwnd += growth.increment
        if growth.enter_congestion_avoidance:
            self.ssthresh = self.cwnd  # RFC 9406 4.2: CSS_ROUNDS done

    def _begin_epoch(self, now: float) -> None:
        """The first ACK of a congestion avoidance stage (RFC 9438 4.2, 4.3, 4.8)."""
        self.t_epoch = now
        self.cwnd_epoch = float(self.cwnd)
        self.w_est = float(self.cwnd)  # RFC 9438 4.3: W_est = cwnd_epoch
        if self._after_rto or self.w_max < self.cwnd:
            # RFC 9438 4.8: after an RTO, W_max is the window at the start of the stage;
            # the same with no reduction yet (slow start ended by HyStart++ or ssthresh):
            # K = 0, the stage starts at the plateau and probes upward at once
            self.w_max = float(self.cwnd)
            self._after_rto = False
        smss = self.smss
        self.k = k(self.w_max / smss, self.cwnd_epoch / smss)

    def _congestion_avoidance(self, acked: int, now: float) -> None:
        """RFC 9438 4.2-4.5, per ACK, with the RFC's segment counts scaled by acked/SMSS."""
        smss, cwnd = self.smss, self.cwnd
        assert self.t_epoch is not None
        t = now - self.t_epoch
        # 4.3: W_est grows like Reno's window would (alpha_cubic per window of ACKs), until
        # it reaches the window before the last reduction, then at Reno's own pace
        alpha = ALPHA_CUBIC if self.w_est < self.cwnd_prior else 1.0
        self.w_est += alpha * acked * smss / cwnd
        w_max = self.w_max / smss
        cubic_now = w_cubic(t, w_max, self.k) * smss
        if cubic_now < self.w_est:
            # 4.3: the Reno-friendly region
            self._carry = 0.0
            self.cwnd = max(cwnd, int(self.w_est))
            return
        # 4.4/4.5: concave or convex; aim at W_cubic one RTT ahead, clamped to
        # [cwnd, 1.5 cwnd], and close (target - cwnd) / cwnd of the gap per SMSS acked
        target = w_cubic(t + self._rtt, w_max, self.k) * smss
        target = min(max(target, cwnd), 1.5 * cwnd)
        self._carry += (target - cwnd) * acked / cwnd
        whole = int(self._carry)
        self.cwnd += whole
        self._carry -= whole

    def on_loss(self, flight: int, now: float) -> None:
        """A loss detected (fast retransmit, SACK recovery, a repair by a tail loss probe)
        or an ECN echo: the multiplicative decrease of RFC 9438 4.6 with fast convergence
        (4.7)."""
        del now  # the next stage's epoch starts at its first ACK
        cwnd = self.cwnd
        if self.fast_convergence and cwnd < self.w_max:
            # 4.7: a second reduction below the last W_max: the flow's share is shrinking,
            # so give up more of it to let newer flows in
            self.w_max = cwnd * (1 + BETA_CUBIC) / 2
        else:
            self.w_max = float(cwnd)
        self.cwnd_prior = float(cwnd)
        # RFC 9438 4.6: ssthresh = flight_size * beta_cubic, or cwnd * beta_cubic as some
        # implementations (Linux) do. The smaller: right after a recovery the flight can
        # still hold SACKed data far beyond cwnd, and a "reduction" must not grow cwnd
        self.ssthresh = max(round(min(flight, cwnd) * BETA_CUBIC), 2 * self.smss)
        self.cwnd = self.ssthresh
        self._end_epoch()

    def on_rto(self, flight: int, now: float, *, first: bool) -> None:
        """RFC 9438 4.8: Reno's reaction to a timeout, cwnd = 1 SMSS (the loss window),
        but ssthresh reduced by beta_cubic; a repeated timeout keeps ssthresh."""
        del now
        if first:
            self.cwnd_prior = float(self.cwnd)
            self.ssthresh = max(round(flight * BETA_CUBIC), 2 * self.smss)
        self.cwnd = self.smss
        self._after_rto = True
        self._end_epoch()

    def undo_state(self) -> UndoState:
        """RFC 9438 4.9.2: undo_cwnd, undo_ssthresh, undo_W_max, undo_K, undo_t_epoch,
        undo_W_est (and cwnd_prior and cwnd_epoch, which the Reno-friendly region and
        the next K read)."""
        return (self.cwnd, self.ssthresh, self.w_max, self.k, self.t_epoch, self.w_est,
                self.cwnd_prior, self.cwnd_epoch)

    def undo(self, state: UndoState) -> None:
        """RFC 9438 4.9.2: the loss was spurious. Restore the saved variables, unless
        cwnd has meanwhile grown past the saved one: then the current ones are newer
        ("SHOULD continue to use the current and the most recent values")."""
        cwnd, ssthresh, w_max, k_, t_epoch, w_est, cwnd_prior, cwnd_epoch = state
        assert cwnd is not None and ssthresh is not None and w_max is not None
        assert k_ is not None and w_est is not None and cwnd_prior is not None
        assert cwnd_epoch is not None
        if self.cwnd >= cwnd:
            return
        self.cwnd, self.ssthresh = int(cwnd), int(ssthresh)
        self.w_max, self.k, self.t_epoch, self.w_est = w_max, k_, t_epoch, w_est
        self.cwnd_prior, self.cwnd_epoch = cwnd_prior, cwnd_epoch
        self._carry = 0.0

    def restart_after_idle(self) -> None:
        """RFC 5681 4.1: cwnd = min(IW, cwnd) after an idle RTO; the cubic's clock
        starts again with the next congestion avoidance stage."""
        self.cwnd = min(self.cwnd, initial_window(self.smss))
        self.t_epoch = None

    def _end_epoch(self) -> None:
        self.t_epoch = None
        self._carry = 0.0
        if self.hystart is not None:
            self.hystart.stop()
