"""CUBIC (RFC 9438) and HyStart++ (RFC 9406), each object on its own, against the RFCs'
formulas: the window function and K, the Reno-friendly region, fast convergence, the
reductions, and HyStart++'s rounds, RTT threshold and Conservative Slow Start."""

from __future__ import annotations

import math

import pytest
from tcp_harness import IRS, ISS, established, seg, send

from userstack.tcp.config import Congestion, TcpConfig
from userstack.tcp.congestion import Reno
from userstack.tcp.cubic import ALPHA_CUBIC, BETA_CUBIC, C, Cubic, k, w_cubic
from userstack.tcp.hystart import (
    CSS_GROWTH_DIVISOR,
    CSS_ROUNDS,
    L_UNPACED,
    N_RTT_SAMPLE,
    HyStartPlusPlus,
    Phase,
    rtt_thresh,
)

SMSS = 1000


def test_the_rfc_constants() -> None:
    assert (C, BETA_CUBIC) == (0.4, 0.7)  # RFC 9438 5 and 4.6
    # RFC 9438 4.3: alpha_cubic = 3 (1 - beta_cubic) / (1 + beta_cubic), about 0.53
    assert pytest.approx(0.9 / 1.7) == ALPHA_CUBIC
    assert round(ALPHA_CUBIC, 2) == 0.53


def test_k_and_the_window_function() -> None:
    # W_max = 100 segments, reduced by beta_cubic to cwnd_epoch = 70:
    # K = cbrt((100 - 70) / 0.4) = cbrt(75) = 4.2172 s
    assert k(100, 70) == pytest.approx(75 ** (1 / 3))
    assert k(100, 70) == pytest.approx(4.2172, abs=1e-4)
    kk = k(100, 70)
    assert w_cubic(0, 100, kk) == pytest.approx(70)  # the stage starts at cwnd_epoch
    assert w_cubic(kk, 100, kk) == pytest.approx(100)  # the plateau at W_max, t = K
    # point symmetry about (K, W_max): concave before, convex after
    for d in (0.5, 1.0, 2.0):
        assert w_cubic(kk + d, 100, kk) - 100 == pytest.approx(100 - w_cubic(kk - d, 100, kk))
    assert w_cubic(kk + 1, 100, kk) == pytest.approx(100.4)  # C * 1^3 past the plateau
    # above W_max (no reduction yet), K is negative: the curve is already convex
    assert k(100, 130) == pytest.approx(-(75 ** (1 / 3)))
    assert k(50, 50) == 0


def _reduced(w_max_segments: int, *, rtt: float, fast_convergence: bool = True) -> Cubic:
    """A controller just reduced by a loss at cwnd = w_max_segments (all in flight)."""
    cc = Cubic(SMSS, hystart=False, fast_convergence=fast_convergence)
    cc.cwnd = w_max_segments * SMSS
    cc.ssthresh = cc.cwnd  # in congestion avoidance
    cc.on_loss(cc.cwnd, 0.0)
    cc.on_ack(0, 0.0, rtt=rtt)  # nothing acked: only begins the epoch at t = 0
    return cc


def _round_trips(cc: Cubic, start: float, rtt: float, n: int) -> float:
    """n round trips, each acknowledging the cwnd it began with, an SMSS per ACK."""
    now = start
    for _ in range(n):
        window = cc.cwnd
        for offset in range(0, window, SMSS):
            cc.on_ack(min(SMSS, window - offset), now + rtt * offset / window, rtt=rtt)
        now += rtt
    return now


def test_multiplicative_decrease() -> None:
    cc = Cubic(SMSS, hystart=False)
    cc.cwnd = cc.ssthresh = 100 * SMSS
    cc.on_loss(90 * SMSS, 5.0)
    # RFC 9438 4.6: ssthresh = flight_size * beta_cubic, cwnd = ssthresh, cwnd_prior = cwnd
    assert (cc.ssthresh, cc.cwnd) == (63 * SMSS, 63 * SMSS)
    assert (cc.w_max, cc.cwnd_prior) == (100 * SMSS, 100 * SMSS)
    assert cc.t_epoch is None
    # never more than cwnd * beta_cubic: a flight beyond cwnd (SACKed data after a
    # recovery) must not make the reduction an increase
    cc.on_loss(200 * SMSS, 5.5)
    assert cc.cwnd == round(63 * SMSS * BETA_CUBIC) < 63 * SMSS
    # never below 2 SMSS
    cc.on_loss(SMSS, 6.0)
    assert (cc.ssthresh, cc.cwnd) == (2 * SMSS, 2 * SMSS)


def test_concave_growth_reaches_w_max_at_k() -> None:
    rtt = 0.1
    cc = _reduced(100, rtt=rtt)
    assert cc.k == pytest.approx(75 ** (1 / 3))
    assert cc.cwnd == 70 * SMSS and cc.w_est == 70 * SMSS
    now = _round_trips(cc, 0.0, rtt, 20)  # t = 2 s, in the concave region
    # cwnd aims at W_cubic(t + RTT) (RFC 9438 4.4), so it runs at most an RTT ahead
    assert w_cubic(now - rtt, 100, cc.k) * SMSS <= cc.cwnd <= w_cubic(now + rtt, 100, cc.k) * SMSS
    now = _round_trips(cc, now, rtt, 22)  # t = 4.2 s, about K
    assert cc.cwnd == pytest.approx(100 * SMSS, rel=0.02)
    now = _round_trips(cc, now, rtt, 20)  # t = 6.2 s: convex, above W_max
    assert cc.cwnd > 100 * SMSS
    assert cc.cwnd == pytest.approx(w_cubic(now, 100, cc.k) * SMSS, rel=0.03)


def test_target_is_clamped_to_one_and_a_half_cwnd() -> None:
    """RFC 9438 4.2: target is at most 1.5 cwnd, so one ACK'd window grows cwnd by at
    most half of itself however far the cubic has run ahead (a long-idle stage)."""
    cc = _reduced(100, rtt=0.1)
    start = cc.cwnd
    cc.on_ack(start, 60.0, rtt=0.1)  # a whole window acked a minute into the stage
    assert cc.cwnd == start + start // 2


def test_reno_friendly_region() -> None:
    """Short RTT, small window: Reno would be ahead of the cubic, so cwnd follows
    W_est, which grows alpha_cubic per window until it reaches cwnd_prior and then one
    segment per window (RFC 9438 4.3)."""
    rtt = 0.01
    cc = _reduced(10, rtt=rtt)
    assert cc.k == pytest.approx(7.5 ** (1 / 3))  # 1.96 s
    now = _round_trips(cc, 0.0, rtt, 5)
    assert cc.w_est < cc.cwnd_prior
    assert w_cubic(now, 10, cc.k) * SMSS < cc.w_est  # the cubic is behind: Reno-friendly
    assert cc.cwnd == int(cc.w_est)
    # W_est = 7 + alpha * acked / cwnd summed over five windows: about 5 * 0.53 segments
    assert cc.w_est / SMSS == pytest.approx(7 + 5 * ALPHA_CUBIC, abs=0.3)
    now = _round_trips(cc, now, rtt, 2)
    assert cc.w_est >= cc.cwnd_prior  # from here on, alpha is 1: Reno's own pace
    before = cc.w_est
    now = _round_trips(cc, now, rtt, 5)
    assert (cc.w_est - before) / SMSS == pytest.approx(5, abs=0.3)  # one segment per window
    assert w_cubic(now, 10, cc.k) * SMSS < cc.w_est and cc.cwnd == int(cc.w_est)


def test_fast_convergence() -> None:
    """RFC 9438 4.7: a loss below the previous W_max sets W_max = cwnd (1 + beta) / 2."""
    for fast, expected in ((True, 80 * (1 + BETA_CUBIC) / 2), (False, 80)):
        cc = _reduced(100, rtt=0.1, fast_convergence=fast)
        cc.cwnd = 80 * SMSS
        cc.on_loss(80 * SMSS, 1.0)
        assert cc.w_max == pytest.approx(expected * SMSS)
        assert cc.cwnd == 56 * SMSS
    assert pytest.approx(68) == 80 * (1 + BETA_CUBIC) / 2


def test_timeout_then_the_cubic_starts_at_k_zero() -> None:
    """RFC 9438 4.8: ssthresh by beta_cubic, cwnd = 1 SMSS; a repeated timeout keeps
    ssthresh; the next congestion avoidance stage takes W_max = its first cwnd (K = 0)."""
    cc = _reduced(100, rtt=0.1)
    cc.on_rto(50 * SMSS, 3.0, first=True)
    assert (cc.cwnd, cc.ssthresh) == (SMSS, 35 * SMSS)
    cc.on_rto(50 * SMSS, 4.0, first=False)
    assert (cc.cwnd, cc.ssthresh) == (SMSS, 35 * SMSS)
    now = 4.0
    while cc.in_slow_start:
        now += 0.01
        cc.on_ack(SMSS, now, rtt=0.1)  # standard slow start: one SMSS per ACK
    assert cc.cwnd == 35 * SMSS
    cc.on_ack(SMSS, now + 0.01, rtt=0.1)
    assert cc.t_epoch == pytest.approx(now + 0.01)
    assert (cc.w_max, cc.k) == (35 * SMSS, 0)


def test_restart_after_idle() -> None:
    cc = _reduced(100, rtt=0.1)
    cc.restart_after_idle()
    assert cc.cwnd == 4 * SMSS  # RFC 5681 4.1: min(IW, cwnd); IW of 1000-byte segments
    assert cc.t_epoch is None and cc.in_slow_start


# ---- HyStart++ ------------------------------------------------------------------------


def test_rtt_threshold_is_clamped() -> None:
    # RttThresh = max(4 ms, min(lastRoundMinRTT / 8, 16 ms))
    assert rtt_thresh(0.040) == pytest.approx(0.005)
    assert rtt_thresh(0.010) == pytest.approx(0.004)
    assert rtt_thresh(0.200) == pytest.approx(0.016)


class _Flow:
    """A HyStart++ object driven the way a controller drives it: cwnd grows by what it
    returns, and each round acknowledges the window it began with, one SMSS per ACK."""

    def __init__(self, cwnd: int = 10 * SMSS) -> None:
        self.cwnd = cwnd
        self.h = HyStartPlusPlus(SMSS, cwnd)
        self.entered_ca = False

    def ack(self, acked: int, rtt: float | None) -> int:
        growth = self.h.on_ack(acked, rtt, self.cwnd)
        self.cwnd += growth.increment
        self.entered_ca |= growth.enter_congestion_avoidance
        return growth.increment

    def round(self, rtt: float) -> None:
        for _ in range(-(-self.h.round_left // SMSS)):
            self.ack(SMSS, rtt)
        assert self.h.current_round_min_rtt == math.inf  # the round closed on its last ACK


def test_rounds_follow_the_window() -> None:
    f = _Flow(10 * SMSS)
    f.round(0.1)
    assert f.cwnd == 20 * SMSS  # slow start doubles per round
    assert f.h.round_left == 20 * SMSS and f.h.last_round_min_rtt == 0.1
    assert f.h.rtt_sample_count == 0


def test_rtt_increase_enters_css_and_css_rounds_end_slow_start() -> None:
    f = _Flow(10 * SMSS)
    f.round(0.100)
    f.round(0.104)  # +4 ms: below RttThresh = 12.5 ms, still slow start
    assert f.h.phase is Phase.SLOW_START
    base = f.cwnd
    for _ in range(N_RTT_SAMPLE - 1):  # +13 ms, but fewer than N_RTT_SAMPLE samples yet
        f.ack(SMSS, 0.117)
    assert f.h.phase is Phase.SLOW_START and f.cwnd == base + (N_RTT_SAMPLE - 1) * SMSS
    assert f.ack(SMSS, 0.117) == SMSS // CSS_GROWTH_DIVISOR  # the eighth sample: CSS
    assert f.h.phase is Phase.CSS and f.h.css_baseline_min_rtt == 0.117
    # CSS: a quarter of slow start's growth, then congestion avoidance after CSS_ROUNDS
    rounds = 0
    while not f.entered_ca:
        f.round(0.120)
        rounds += 1
    assert rounds == CSS_ROUNDS  # the round CSS began in counts as its first
    assert f.h.phase is Phase.DONE


def test_spurious_css_exit_resumes_slow_start() -> None:
    f = _Flow(10 * SMSS)
    f.round(0.100)
    f.round(0.120)  # +20 ms: CSS at the eighth sample
    assert f.h.phase is Phase.CSS
    for _ in range(N_RTT_SAMPLE):  # the next round's RTT is back under the baseline
        f.ack(SMSS, 0.101)
    assert f.h.phase is Phase.SLOW_START and f.h.css_baseline_min_rtt == math.inf


def test_growth_per_ack_is_capped_at_l_smss() -> None:
    f = _Flow(100 * SMSS)
    assert f.ack(20 * SMSS, None) == L_UNPACED * SMSS  # RFC 9406 4.2: min(N, L * SMSS)


def test_cubic_uses_hystart_for_the_first_slow_start_only() -> None:
    cc = Cubic(SMSS)
    assert cc.hystart is not None and cc.hystart.phase is Phase.SLOW_START
    cc.on_ack(3 * SMSS, 0.1, rtt=0.1)
    assert cc.cwnd == 4 * SMSS + 3 * SMSS  # L = 8: a stretch ACK counts whole
    cc.on_loss(cc.cwnd, 0.2)
    assert cc.hystart.phase is Phase.DONE
    cc.on_rto(cc.cwnd, 0.3, first=True)
    cc.on_ack(3 * SMSS, 0.4, rtt=0.1)
    assert cc.cwnd == 2 * SMSS  # later slow starts are standard: one SMSS per ACK


def test_cubic_ends_slow_start_when_hystart_says() -> None:
    cc = Cubic(SMSS)
    now, rtt = 0.0, 0.100
    while cc.ssthresh > cc.cwnd:
        for _ in range(max(1, cc.cwnd // SMSS)):
            now += 0.001
            cc.on_ack(SMSS, now, rtt=rtt)
            if cc.ssthresh <= cc.cwnd:
                break
        rtt += 0.020  # the queue grows every round
        assert now < 10
    assert cc.hystart is not None and cc.hystart.phase is Phase.DONE
    assert cc.ssthresh == cc.cwnd < 1 << 20


def test_the_config_chooses_the_controller() -> None:
    assert TcpConfig(congestion="cubic").congestion is Congestion.CUBIC
    assert TcpConfig().congestion is Congestion.NEWRENO
    with pytest.raises(ValueError, match="congestion must be one of newreno, cubic"):
        TcpConfig(congestion="vegas")
    cubic = established(TcpConfig(congestion="cubic"), peer_window=60000)
    assert isinstance(cubic.sender.cc, Cubic)
    assert isinstance(established(TcpConfig(), peer_window=60000).sender.cc, Reno)
    # the first slow start is HyStart++'s: a stretch ACK of 3 segments counts whole
    cubic.send(b"d" * 3000, 0.0)
    cubic.take_outgoing()
    before = cubic.sender.cc.cwnd
    send(cubic, seg(IRS + 1, ISS + 3001, window=60000), at=0.1)
    assert cubic.sender.cc.cwnd == before + 3000
