"""What a Connection tells its caller. The caller drains them with take_events().

The stream layer wakes readers and writers on them; the tracer prints StateChanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .state import State


class ErrorReason(Enum):
    """Why a connection failed, errno-style (the names follow the errno each maps to)."""

    CONNECTION_REFUSED = "connection refused"  # RST in SYN-SENT (ECONNREFUSED)
    CONNECTION_RESET = "connection reset by peer"  # RST in a later state (ECONNRESET)
    TIMED_OUT = "connection timed out"  # retransmission limit reached (ETIMEDOUT)


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class Connected:
    """ESTABLISHED reached: the handshake is complete."""


@dataclass(frozen=True, slots=True)
class DataReadable:
    """New in-order bytes are waiting for receive()."""


@dataclass(frozen=True, slots=True)
class SendSpace:
    """Room opened in the send buffer (data was acknowledged)."""


@dataclass(frozen=True, slots=True)
class Eof:
    """The peer's FIN was reached in sequence: no more data will arrive."""


@dataclass(frozen=True, slots=True)
class Error:
    """The connection failed; it is (or is about to be) CLOSED."""

    reason: ErrorReason


@dataclass(frozen=True, slots=True)
class Closed:
    """The TCB is deleted (state CLOSED); the caller may forget the connection."""


Event = StateChanged | Connected | DataReadable | SendSpace | Eof | Error | Closed
