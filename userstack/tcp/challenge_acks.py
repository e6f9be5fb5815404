"""RFC 5961 7: at most so many challenge ACKs a second, so a blind attacker's flood of
guesses cannot make the stack flood the peer with ACKs (nor learn from their rate).

A connection makes its `ChallengeAckLimit` with the first challenge ACK it owes: most
connections never send one, and an idle connection keeps no counters (issue 13).
"""

from __future__ import annotations


class ChallengeAckLimit:
    """The challenge ACKs of the current one-second window, and how many were left out."""

    __slots__ = ("sent", "suppressed", "window_ends")

    def __init__(self, now: float) -> None:
        self.sent = 0  # challenge ACKs sent in the window
        self.window_ends = now + 1.0
        self.suppressed = 0  # challenge ACKs the limit left out, over the connection's life

    def allow(self, limit: int, now: float) -> bool:
        """One more challenge ACK at `now`, if fewer than `limit` went out this second."""
        if now >= self.window_ends:
            self.window_ends = now + 1.0  # a new one-second window
            self.sent = 0
        if self.sent >= limit:
            self.suppressed += 1
            return False
        self.sent += 1
        return True
