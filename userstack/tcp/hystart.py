"""HyStart++ (RFC 9406): leave slow start when the RTT starts to grow, before a loss.

Slow start doubles cwnd every round trip until something is lost, and the last doubling
overshoots the path by up to a whole window: a burst of losses and a long recovery. HyStart++
watches the smallest RTT of each round. When a round's minimum is clearly above the previous
round's (the queue at the bottleneck is filling), it leaves slow start for Conservative Slow
Start (CSS): growth divided by CSS_GROWTH_DIVISOR, for CSS_ROUNDS rounds. If the RTT falls
back below the baseline during CSS, the exit was spurious and slow start resumes; after
CSS_ROUNDS rounds, congestion avoidance begins with ssthresh = cwnd.

Rounds. The RFC ends a round when an ACK covers `windowEnd`, the SND.NXT of the round's
start. The congestion controller sees bytes acked, not sequence numbers, so a round here ends
once the bytes acknowledged since it began reach the cwnd it began with: in slow start the
sender fills cwnd, so that is the same ACK, without the controller reading the sender's
cursors. (An application-limited sender's rounds come out longer; they only pace the RTT
checks.)

Sans-I/O: RTT samples come in with each ACK; nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

# RFC 9406 4.3, the recommended constants
MIN_RTT_THRESH = 0.004  # 4 ms
MAX_RTT_THRESH = 0.016  # 16 ms
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5
L_UNPACED = 8  # L: at most this many SMSS of growth per ACK (an unpaced sender; RFC 9406 4.3)


class Phase(Enum):
    SLOW_START = "slow start"
    CSS = "conservative slow start"
    DONE = "done"  # congestion avoidance (or HyStart++ turned off by a loss or an RTO)


@dataclass(frozen=True, slots=True)
class Growth:
    """What one ACK does in slow start: bytes to add to cwnd, and whether CSS has run its
    CSS_ROUNDS rounds, so the caller must set ssthresh = cwnd (RFC 9406 4.2)."""

    increment: int
    enter_congestion_avoidance: bool = False


def rtt_thresh(last_round_min_rtt: float) -> float:
    """RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH))."""
    return max(MIN_RTT_THRESH, min(last_round_min_rtt / MIN_RTT_DIVISOR, MAX_RTT_THRESH))


class HyStartPlusPlus:
    """The state of RFC 9406 4.2 for one connection's initial slow start."""

    __slots__ = (
        "css_baseline_min_rtt", "css_rounds", "current_round_min_rtt",
        "last_round_min_rtt", "phase", "round_left", "rtt_sample_count", "smss",
    )

    def __init__(self, smss: int, cwnd: int) -> None:
        self.smss = smss
        self.phase = Phase.SLOW_START
        self.last_round_min_rtt = math.inf
        self.current_round_min_rtt = math.inf
        self.rtt_sample_count = 0
        self.css_baseline_min_rtt = math.inf
        self.css_rounds = 0
        self.round_left = cwnd  # bytes still to be acknowledged before this round ends

    def stop(self) -> None:
        """A loss, an ECN mark or an RTO: HyStart++ is only for the initial slow start
        (RFC 9406 4.2: later slow starts are standard ones)."""
        self.phase = Phase.DONE

    def on_ack(self, acked: int, rtt: float | None, cwnd: int) -> Growth:
        """One ACK of `acked` new bytes in slow start or CSS (phase is not DONE), `cwnd`
        before it grows."""
        if rtt is not None:
            self.current_round_min_rtt = min(self.current_round_min_rtt, rtt)
            self.rtt_sample_count += 1
        growth = min(acked, L_UNPACED * self.smss)
        if self.phase is Phase.SLOW_START:
            self._check_exit()
        else:
            self._check_spurious_exit()
        if self.phase is Phase.CSS:
            growth //= CSS_GROWTH_DIVISOR
        done = self._count_round(acked, cwnd + growth)
        return Growth(growth, done)

    def _enough_samples(self) -> bool:
        return self.rtt_sample_count >= N_RTT_SAMPLE and self.current_round_min_rtt < math.inf

    def _check_exit(self) -> None:
        """Slow start -> CSS when this round's minimum RTT has risen by RttThresh."""
        if not self._enough_samples() or self.last_round_min_rtt == math.inf:
            return
        threshold = rtt_thresh(self.last_round_min_rtt)
        if self.current_round_min_rtt >= self.last_round_min_rtt + threshold:
            self.css_baseline_min_rtt = self.current_round_min_rtt
            self.phase = Phase.CSS
            self.css_rounds = 0

    def _check_spurious_exit(self) -> None:
        """CSS -> slow start when the RTT fell back below the baseline."""
        if self._enough_samples() and self.current_round_min_rtt < self.css_baseline_min_rtt:
            self.css_baseline_min_rtt = math.inf
            self.phase = Phase.SLOW_START

    def _count_round(self, acked: int, cwnd: int) -> bool:
        """Close the round once a window's worth is acknowledged; True when that was the
        last of CSS_ROUNDS rounds of CSS."""
        self.round_left -= acked
        if self.round_left > 0:
            return False
        self.round_left = cwnd
        self.last_round_min_rtt = self.current_round_min_rtt
        self.current_round_min_rtt = math.inf
        self.rtt_sample_count = 0
        if self.phase is Phase.CSS:
            self.css_rounds += 1
            if self.css_rounds >= CSS_ROUNDS:
                self.phase = Phase.DONE
                return True
        return False
