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
    # From ICMP errors (icmp_errors.py): a hard one before the connection is synchronized,
    # or the last soft one, reported when the connection then times out (as Linux does)
    NETWORK_UNREACHABLE = "network is unreachable"  # ENETUNREACH
    HOST_UNREACHABLE = "no route to host"  # EHOSTUNREACH
    PROTOCOL_UNREACHABLE = "protocol not available"  # ICMP protocol unreachable (ENOPROTOOPT)
    PROTOCOL_ERROR = "protocol error"  # ICMP parameter problem (EPROTO)


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
class Urgent:
    """The peer sent urgent data (RFC 9293 3.8.5, MUST-32). It is read in line with the
    rest; Connection.urgent_pending says how much must be read to get past it. Signalled
    once per run of urgent data. (RFC 6093: new applications should not use urgent data.)"""


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


Event = StateChanged | Connected | DataReadable | Urgent | SendSpace | Eof | Error | Closed
