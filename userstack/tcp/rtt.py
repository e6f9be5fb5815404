"""The retransmission timeout: RFC 6298's estimator, with Karn's rule left to the caller.

The caller takes at most one sample per round trip, never from a retransmitted
segment (Karn's algorithm, RFC 6298 3), and calls back_off() when the timer expires.
"""

from __future__ import annotations

from .config import TcpConfig

ALPHA = 1 / 8  # RFC 6298 (2.3)
BETA = 1 / 4
K = 4
CLOCK_GRANULARITY = 0.001  # G: `now` is a float in seconds, so a millisecond is conservative


def expected_samples(flight: int, smss: int) -> int:
    """RFC 7323 Appendix G: ExpectedSamples = ceiling(FlightSize / (SMSS * 2)), the RTT
    samples one window of ACKs brings (one per two segments: delayed ACKs); at least 1."""
    return max(1, -(-flight // (2 * smss)))


class RttEstimator:
    __slots__ = ("config", "rto", "rttvar", "srtt")

    def __init__(self, config: TcpConfig) -> None:
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = config.rto_initial  # RFC 6298 (2.1)
        # the bounds are read from the shared configuration, not copied (issue 13)
        self.config = config

    def sample(self, r: float, expected: int = 1) -> None:
        """Fold in one measurement R; this also undoes any backoff (RFC 6298 (2.2), (2.3)).
        With timestamps a round trip gives `expected` samples: alpha and beta are divided
        by it, so SRTT keeps the history RFC 6298 meant (RFC 7323 Appendix G)."""
        if self.srtt is None or self.rttvar is None:
            # RFC 6298 (2.2): first measurement
            self.srtt = r
            self.rttvar = r / 2
        else:
            # RFC 6298 (2.3): RTTVAR first, using the old SRTT
            alpha, beta = ALPHA / expected, BETA / expected
            self.rttvar = (1 - beta) * self.rttvar + beta * abs(self.srtt - r)
            self.srtt = (1 - alpha) * self.srtt + alpha * r
        rto = self.srtt + max(CLOCK_GRANULARITY, K * self.rttvar)
        # RFC 6298 (2.4) minimum, (2.5) maximum
        config = self.config
        self.rto = min(max(rto, config.rto_min), config.rto_max)

    def back_off(self) -> None:
        """RFC 6298 (5.5): the timer expired, double the RTO (up to the maximum, (2.5))."""
        self.rto = min(self.rto * 2, self.config.rto_max)

    def at_least(self, floor: float) -> None:
        """RFC 6298 (5.7): after a lost SYN, data transmission starts with RTO >= 3 s."""
        if self.srtt is None:
            self.rto = max(self.rto, floor)
