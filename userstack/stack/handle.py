"""The application's side of one connection: the only door from streams and sockets to a TCB.

`Stack.connect()` and `Stack.accept()` return a `ConnectionHandle`. Everything the user
layer does to a connection goes through it, and each call carries `now`:

    handle.send(data, now)           SEND (RFC 9293 3.10.2): bytes taken
    handle.receive(max_bytes, now)   RECEIVE (3.10.3)
    handle.close(now, half=False)    CLOSE (3.10.4); half=True is shutdown(SHUT_WR)
    handle.abort(now)                ABORT (3.10.5)
    handle.set_nodelay / set_keepalive / set_tos(..., now)
    handle.retune(now, keepalive_idle=..)  TcpConfig fields the core reads as it goes
    handle.release()                 the application forgot it (data for it is answered by RST)

Each call runs on the Connection and then lets the stack collect what it produced
(segments become packets, the next deadline goes on the timer heap): that is what the
one private `_call` does, so no user call can forget it.

What the user layer reads is a read-only view (`state`, `readable`, `send_space`,
`failure`, ...) or a `TcbInfo` snapshot (`info(now)`), never the TCB itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from ..tcp.config import TcpConfig
from ..tcp.connection import Connection
from ..tcp.events import ErrorReason
from ..tcp.info import TcbInfo
from ..tcp.state import State
from ..wire.addr import Endpoint

if TYPE_CHECKING:
    from .stack import Stack

_P = ParamSpec("_P")
LIVE_FIELDS = frozenset(
    {"keepalive_idle", "keepalive_interval", "keepalive_probes", "max_retries", "user_timeout",
     "ttl"}
)
"""The TcpConfig fields `ConnectionHandle.retune` may change on an open connection."""
_T = TypeVar("_T")


class ConnectionHandle:
    """One connection as the application sees it; see the module docstring."""

    __slots__ = ("_conn", "_stack")

    def __init__(self, stack: Stack, conn: Connection) -> None:
        self._stack = stack
        self._conn = conn

    # ---- what it is (read-only) ------------------------------------------------------

    @property
    def local(self) -> Endpoint:
        return self._conn.local

    @property
    def remote(self) -> Endpoint:
        return self._conn.remote

    @property
    def state(self) -> State:
        return self._conn.state

    @property
    def config(self) -> TcpConfig:
        return self._conn.config

    @property
    def readable(self) -> int:
        """Bytes received in order and not yet read."""
        return self._conn.readable

    @property
    def send_space(self) -> int:
        """How many bytes send() would take now."""
        return self._conn.send_space

    @property
    def eof_received(self) -> bool:
        """The peer's FIN was reached: once `readable` is 0, no more data will come."""
        return self._conn.eof_received

    @property
    def failure(self) -> ErrorReason | None:
        """Why the connection failed, or None: the one place this is stored."""
        return self._conn.failure

    @property
    def nodelay(self) -> bool:
        return self._conn.nodelay

    @property
    def keepalive(self) -> bool:
        return self._conn.keepalive

    @property
    def urgent_pending(self) -> int:
        return self._conn.urgent_pending

    def info(self, now: float) -> TcbInfo:
        """A snapshot of the TCB (what `ss` shows)."""
        return self._conn.info(now)

    def __repr__(self) -> str:
        conn = self._conn
        return f"<ConnectionHandle {conn.local} -> {conn.remote} {conn.state}>"

    # ---- the user calls --------------------------------------------------------------

    def send(
        self, data: bytes | bytearray | memoryview, now: float, *, urgent: bool = False
    ) -> int:
        """SEND: how many bytes of `data` the send buffer took."""
        return self._call(now, self._conn.send, data, now, urgent=urgent)

    def receive(self, max_bytes: int, now: float) -> bytes:
        """RECEIVE: up to max_bytes in-order bytes, b"" when none are buffered."""
        return self._call(now, self._conn.receive, max_bytes, now)

    def close(self, now: float, *, half: bool = False) -> None:
        """CLOSE: our FIN after the queued data. Unless `half` (the user still reads),
        unread data pending makes it an ABORT instead (RFC 1122 4.2.2.13, in the core)."""
        self._call(now, self._conn.close, now, half=half)

    def abort(self, now: float) -> None:
        """ABORT: RST where the peer has a TCB, and the TCB is gone."""
        self._call(now, self._conn.abort, now)

    def set_nodelay(self, on: bool, now: float) -> None:
        """Nagle off (True) or on (RFC 9293 3.7.4); turning it off may release held data."""
        self._call(now, self._conn.set_nodelay, on, now)

    def set_keepalive(self, on: bool, now: float) -> None:
        """Keep-alives on or off (RFC 9293 3.8.4): the timer moves."""
        self._call(now, self._conn.set_keepalive, on, now)

    def set_tos(self, tos: int, now: float) -> None:
        """The TOS byte of this connection's packets from now on (RFC 9293 3.9.1 MUST-48)."""
        self._call(now, self._conn.set_tos, tos)

    def retune(self, now: float, **changes: object) -> None:
        """Change TcpConfig fields the core reads as it goes (`LIVE_FIELDS`: keep-alive
        timing, retries, the user timeout, TTL): setsockopt on an open connection. The
        buffer sizes, the MSS and the window scale are fixed when it opens (tcp(7): set
        them before listen or connect)."""
        fixed = set(changes) - LIVE_FIELDS
        if fixed:
            raise ValueError(f"fixed once the connection is open: {', '.join(sorted(fixed))}")
        conn = self._conn
        conn.config = dataclasses.replace(conn.config, **changes)  # type: ignore[arg-type]
        if conn.keepalive and "keepalive_idle" in changes:  # the timer restarts, as Linux's
            conn.set_keepalive(False, now)
            self._call(now, conn.set_keepalive, True, now)

    def release(self) -> None:
        """The application closed this connection and will never read it again; the TCB
        lives on (FIN-WAIT, TIME-WAIT) in the stack, and data arriving for it is
        answered with RST."""
        self._stack._release(self._conn)

    def _call(
        self, now: float, user_call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run one user call on the connection, then let the stack collect its output."""
        try:
            return user_call(*args, **kwargs)
        finally:
            self._stack._after_user_call(self._conn, now)
