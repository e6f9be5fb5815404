"""What the Connection raises at its *local* caller. Nothing a peer sends raises."""

from __future__ import annotations

from .events import ErrorReason


class ConnectionStateError(RuntimeError):
    """A user call that the current state does not allow (RFC 9293 3.10: "error: ...")."""


class ConnectionFailed(RuntimeError):
    """The connection failed (reset by the peer, refused, timed out); `reason` says which."""

    def __init__(self, reason: ErrorReason) -> None:
        super().__init__(reason.value)
        self.reason = reason
