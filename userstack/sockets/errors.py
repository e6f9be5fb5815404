"""The kernel's errno for everything a connection can fail with, as Linux reports it."""

from __future__ import annotations

import errno
import os

from ..tcp.events import ErrorReason

# How a failed connection surfaces, as the kernel's errno would (the ICMP ones as Linux
# reports a hard error, or a timeout after a soft one: tcp(7) "Error handling").
FAILURE_ERRNO: dict[ErrorReason, int] = {
    ErrorReason.CONNECTION_REFUSED: errno.ECONNREFUSED,
    ErrorReason.TIMED_OUT: errno.ETIMEDOUT,
    ErrorReason.CONNECTION_RESET: errno.ECONNRESET,
    ErrorReason.NETWORK_UNREACHABLE: errno.ENETUNREACH,
    ErrorReason.HOST_UNREACHABLE: errno.EHOSTUNREACH,
    ErrorReason.PROTOCOL_UNREACHABLE: errno.ENOPROTOOPT,
    ErrorReason.PROTOCOL_ERROR: errno.EPROTO,
}


def os_error(code: int, detail: str) -> OSError:
    """OSError(code) with the kernel's text and what it is about. Python picks the
    subclass from the errno (ConnectionRefusedError, ConnectionResetError, ...)."""
    return OSError(code, f"{os.strerror(code)} ({detail})")


def failure_error(reason: ErrorReason, detail: str) -> OSError:
    """The OSError a socket call raises for a connection that failed for `reason`."""
    return os_error(FAILURE_ERRNO[reason], detail)
