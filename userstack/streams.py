"""The public API: trio streams over the userstack, named as trio names them.

A trio program ports by running inside `with stack.trio_network():` (trio's own
`open_tcp_stream`, `serve_tcp` and the libraries on them then use the stack, through
userstack.sockets), or by calling the stack's twins of trio's functions:
`stack.open_tcp_stream(host, port)` (likewise `open_tcp_listeners`, `serve_tcp`),
where `stack` comes from `open_stack(link, address)`. What comes back is a
`trio.abc.HalfCloseableStream` / `trio.abc.Listener` that raises trio's exceptions; a
TcpStream is a drop-in for trio.SocketStream (`.socket`, `setsockopt`, `getsockopt`),
and its BrokenResourceError chains from an OSError with the kernel's errno.

Every wait here is level-triggered: a task re-checks the connection's state (bytes
readable, send space, EOF, failure) after each wake-up, so an event that fired before
anybody waited (or before an accepted stream existed) is never lost.
"""

from __future__ import annotations

import errno
import operator
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from ipaddress import IPv4Address, IPv6Address, ip_address
from socket import AF_INET
from typing import Any, TypeVar

import trio
from trio.lowlevel import ParkingLot

from .driver import Driver
from .link.base import Link
from .observe.hooks import Observer
from .sockets import SocketHost, UserSocket, failure_error, trio_network
from .sockets.errors import os_error
from .sockets.waiting import wait_until
from .stack import ConnectionHandle, QueueShare, Stack, StackCounters
from .tcp.config import TcpConfig
from .tcp.errors import ConnectionFailed, ConnectionStateError
from .tcp.events import ErrorReason
from .tcp.info import TcbInfo
from .tcp.rules import Explainer
from .tcp.state import State
from .wire.addr import Endpoint

_T = TypeVar("_T")

DEFAULT_RECEIVE_SIZE = 64 * 1024
DEFAULT_BACKLOG = 128


@asynccontextmanager
async def open_stack(
    link: Link,
    address: IPv4Address | IPv6Address | str | None = "10.0.0.2",
    *,
    address6: IPv6Address | str | None = None,
    config: TcpConfig | None = None,
    observer: Observer | None = None,
    isn_key: bytes | None = None,
    explain: Callable[[Endpoint, Endpoint], Explainer] | None = None,
    queue: QueueShare | None = None,
) -> AsyncIterator[UserStack]:
    """Run a TCP/IP stack with `address` on `link` for the duration of the block.

    `address` is the stack's IPv4 address, or its only (IPv6) address; a dual-stack
    host gives both: `open_stack(link, "10.0.0.2", address6="fd00::2")`. `isn_key` is
    the secret behind ISNs, ephemeral ports and flow labels; pass one for a
    reproducible run, or leave it None for 16 random bytes. The link stays the
    caller's: it is not closed on exit. Leaving the block stops the stack at once, as
    a host that vanishes would: no FIN or RST goes out for connections still open.
    `explain` makes the recorder each new connection names its decisions to
    (tcp/rules.py; `serve --trace --why`); with an observer, the driver then hands it
    each packet alone, so a packet's decisions follow its trace line.
    `queue` makes it one stack of several on a multi-queue TUN (`userstack.stack.queues`).
    """
    key = os.urandom(16) if isn_key is None else isn_key
    stack = Stack(
        address, address6=address6, key=key, config=config, offload=link.offload, queue=queue
    )
    stack.explain = explain
    async with trio.open_nursery() as nursery:
        user_stack = UserStack(stack, link, observer)
        await nursery.start(user_stack._driver.run)
        try:
            yield user_stack
        finally:
            nursery.cancel_scope.cancel()


class UserStack:
    """What `open_stack` yields: trio's TCP entry points, served by this stack."""

    def __init__(self, stack: Stack, link: Link, observer: Observer | None) -> None:
        self._stack = stack
        self._driver = Driver(stack, link, observer=observer, on_changed=self._on_changed)
        self._sockets = SocketHost(stack, self._driver.wake)  # wake-ups, bound ports, names

    @property
    def address(self) -> IPv4Address | IPv6Address:
        """The IPv4 address, or the IPv6 one of a stack without IPv4."""
        return self._stack.address

    @property
    def address6(self) -> IPv6Address | None:
        return self._stack.address6

    @property
    def counters(self) -> StackCounters:
        """Drops, RSTs and ICMP answers, by name (see userstack.stack.counters)."""
        return self._stack.counters

    @property
    def config(self) -> TcpConfig:
        return self._stack.config

    @property
    def hosts(self) -> dict[str, IPv4Address | IPv6Address]:
        """The stack's host table: names it resolves (besides numbers and `localhost`)."""
        return self._sockets.resolver.hosts

    def trio_network(self, *, kernel_fallback: bool = False) -> AbstractContextManager[None]:
        """Inside `with stack.trio_network():` trio's network functions and every library
        built on trio.socket use this stack, unchanged (userstack/sockets/network.py):
        TCP goes to the stack (IPv4, and IPv6 if it has an address6), names resolve in
        its table, and any other socket raises OSError, unless `kernel_fallback` sends
        those to the kernel."""
        return trio_network(self._sockets, kernel_fallback=kernel_fallback)

    def socket(self, family: int = AF_INET, proto: int = 0) -> UserSocket:
        """A new SOCK_STREAM socket of this stack, AF_INET or AF_INET6 (what
        trio.socket.socket() gives inside trio_network())."""
        return UserSocket(self._sockets, proto, family=family)

    def connections(self) -> list[TcbInfo]:
        """A snapshot of every TCB, plus one LISTEN row per listener."""
        return self._stack.connections(trio.current_time())

    async def open_tcp_stream(
        self,
        host: IPv4Address | IPv6Address | str | bytes,
        port: int,
        *,
        happy_eyeballs_delay: float | None = 0.25,
        local_address: str | None = None,
        config: TcpConfig | None = None,
    ) -> TcpStream:
        """Active OPEN, like `trio.open_tcp_stream`, with its keywords. `host` is an IPv4
        or IPv6 address ("fd00::1", without brackets, as trio takes it), `localhost` or a
        name in `hosts`; names have one address here, so `happy_eyeballs_delay` has
        nothing to race. `local_address` must be this stack's.

        Raises ConnectionRefusedError (RST or ICMP port unreachable in reply to our
        SYN) or TimeoutError (the SYN retries ran out), each with its errno; an OSError
        with ENETUNREACH / EHOSTUNREACH / ... for another ICMP error (a hard one, or a
        soft one followed by the timeout). Cancelling aborts the attempt. `config` sets
        the connection's TCP parameters and its packets' TTL and DiffServ byte.
        """
        if happy_eyeballs_delay is not None and happy_eyeballs_delay < 0:
            raise ValueError("happy_eyeballs_delay must be >= 0")
        resolver = self._sockets.resolver
        if local_address is not None and resolver.resolve(local_address) not in (
            IPv4Address(0), *self._stack.addresses.all,
        ):
            raise os_error(errno.EADDRNOTAVAIL, f"local_address={local_address!r}")
        try:
            remote = Endpoint(resolver.resolve(host), operator.index(port))
        except ValueError as e:
            raise OSError(errno.EINVAL, f"cannot connect to {host!r}: {e}") from e
        conn = self._sockets.connect(remote, trio.current_time(), config=config)
        stream = TcpStream(self, conn)
        self._driver.wake()
        try:
            await stream._wait_connected()
        except BaseException:
            stream._abort()
            raise
        return stream

    async def open_tcp_listeners(
        self, port: int, *, host: str | None = None, backlog: int | None = None
    ) -> list[TcpListener]:
        """Passive OPEN on `port` (0: any free port), like `trio.open_tcp_listeners`: one
        listener per address family, so `host=None` on a dual-stack host gives an IPv4
        and an IPv6 listener (trio's two sockets, the IPv6 one IPV6_V6ONLY); a `host`
        of one family ("0.0.0.0", "::" or the stack's address) gives that one. With
        port 0 both get the same free port (trio's would each get their own)."""
        await trio.lowlevel.checkpoint()
        stack = self._stack
        versions = [a.version for a in stack.addresses.all]
        if host is not None:
            try:
                wanted = ip_address(host)
            except ValueError as e:
                raise OSError(errno.EINVAL, f"cannot listen on {host!r}: {e}") from e
            if wanted not in (type(wanted)(0), *stack.addresses.all):
                raise OSError(errno.EADDRNOTAVAIL, f"{host} is not this stack's address")
            versions = [wanted.version]
        listeners: list[TcpListener] = []
        port = operator.index(port)
        try:
            for version in versions:
                port = stack.listen(port, backlog or DEFAULT_BACKLOG, version=version)
                listeners.append(TcpListener(self, port, version))
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        return listeners

    async def serve_tcp(
        self,
        handler: Callable[[TcpStream], Awaitable[object]],
        port: int,
        *,
        host: str | None = None,
        backlog: int | None = None,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[TcpListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Like `trio.serve_tcp`: accept forever, each connection in its own task."""
        listeners = await self.open_tcp_listeners(port, host=host, backlog=backlog)
        await trio.serve_listeners(
            handler, listeners, handler_nursery=handler_nursery, task_status=task_status
        )

    # ---- between the streams and the stack ---------------------------------------------

    def _on_changed(self, changed: list[ConnectionHandle], accept_ready: set[int]) -> None:
        self._sockets.changed(changed, accept_ready)


class TcpStream(trio.abc.HalfCloseableStream):
    """One TCP connection as a trio stream. Make one with `UserStack.open_tcp_stream`
    or accept one from a `TcpListener`.

    aclose() closes like trio's SocketStream over a kernel socket: the CLOSE goes to the
    stack at once (our FIN after the queued data; RST instead if unread data is pending,
    RFC 1122 4.2.2.13), then the call checkpoints. Cancellation cannot turn that into an
    ABORT, so `trio.aclose_forcefully` (what `serve_tcp` does when a handler returns)
    closes with a FIN too. The TCB lives on in the stack through FIN-WAIT and TIME-WAIT.
    """

    def __init__(self, owner: UserStack, conn: ConnectionHandle) -> None:
        self._owner = owner
        self._wake_driver = owner._driver.wake
        self._conn = conn  # the door to the connection: every call and read goes through it
        self._readers = ParkingLot()  # woken whenever the connection had events
        self._writers = ParkingLot()
        self._closed = False  # aclose() was called
        self._eof_sent = False  # send_eof() was called
        self._sending = False  # send_all / send_eof / wait_send_all_might_not_block running
        self._receiving = False
        self._socket: UserSocket | None = None  # made when asked for (.socket)
        owner._sockets.watch(conn, self._wake_all)

    # ---- what it is --------------------------------------------------------------------

    @property
    def local_address(self) -> Endpoint:
        return self._conn.local

    @property
    def remote_address(self) -> Endpoint:
        return self._conn.remote

    @property
    def state(self) -> State:
        return self._conn.state

    @property
    def nodelay(self) -> bool:
        """True: send small segments at once instead of waiting per Nagle (RFC 9293 3.7.4)."""
        return self._conn.nodelay

    @nodelay.setter
    def nodelay(self, on: bool) -> None:
        self._call(self._conn.set_nodelay, on)
        self._wake_driver()  # data Nagle held back may leave now

    def set_nodelay(self, on: bool = True) -> None:
        self.nodelay = on

    @property
    def keepalive(self) -> bool:
        """Keep-alive probes after `TcpConfig.keepalive_idle` of silence (RFC 9293 3.8.4),
        like SO_KEEPALIVE: off unless turned on, per connection (MUST-24, MUST-25)."""
        return self._conn.keepalive

    @keepalive.setter
    def keepalive(self, on: bool) -> None:
        self._call(self._conn.set_keepalive, on)
        self._wake_driver()  # the connection's next deadline moved

    @property
    def tos(self) -> int:
        """The TOS byte of the packets this connection sends: a DiffServ codepoint << 2
        (RFC 2474), like IP_TOS; settable at any time (RFC 9293 3.9.1 MUST-48)."""
        return self._conn.config.tos

    @tos.setter
    def tos(self, tos: int) -> None:
        self._conn.set_tos(tos, trio.current_time())  # ValueError if invalid

    def info(self) -> TcbInfo:
        """A snapshot of this connection's TCB (what `ss` shows)."""
        return self._conn.info(trio.current_time())

    @property
    def socket(self) -> UserSocket:
        """The connection as a trio socket (trio.SocketStream.socket): for getsockname,
        getpeername and options. Closing the stream closes it."""
        if self._socket is None:
            self._socket = UserSocket(self._owner._sockets, handle=self._conn)
            if self._closed:
                self._socket.forget()
        return self._socket

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        """As trio.SocketStream.setsockopt: on the connection's socket (tcp(7) options)."""
        self.socket.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> Any:
        """As trio.SocketStream.getsockopt (also TCP_INFO, as a TcbInfo)."""
        return self.socket.getsockopt(level, option, buffersize or None)

    def __repr__(self) -> str:
        return f"<TcpStream {self._conn.local} -> {self._conn.remote} {self._conn.state}>"

    # ---- woken by the stack -------------------------------------------------------------

    def _wake_all(self) -> None:
        """The connection had events: every waiter re-checks (the waits are level-triggered)."""
        self._readers.unpark_all()
        self._writers.unpark_all()

    def _broken(self, cause: BaseException | None = None) -> trio.BrokenResourceError:
        """trio's error for a broken stream, chained from the OSError (with the kernel's
        errno) that trio.SocketStream would chain it from."""
        conn = self._conn
        reason = conn.failure
        if reason is not None:
            os_cause = failure_error(reason, str(conn.remote))
            os_cause.__cause__ = cause or ConnectionFailed(reason)
        else:
            os_cause = os_error(errno.EPIPE, f"connection is {conn.state}")
            os_cause.__cause__ = cause
        error = trio.BrokenResourceError(f"socket connection broken: {os_cause}")
        error.__cause__ = os_cause
        return error

    def _call(self, user_call: Callable[..., _T], *args: object, **kwargs: object) -> _T:
        """A user call on the stack for this connection, at `now`; the core's refusals
        (the connection failed, or cannot do that in its state) become trio's
        BrokenResourceError."""
        try:
            return user_call(*args, trio.current_time(), **kwargs)
        except (ConnectionFailed, ConnectionStateError) as e:
            broken = self._broken(e)
            raise broken from broken.__cause__  # BrokenResourceError <- OSError <- e

    def _closed_meanwhile(self) -> bool:
        return self._closed

    # ---- sending -----------------------------------------------------------------------

    @contextmanager
    def _send_slot(self) -> Iterator[None]:
        """One sender at a time (trio's rule for send_all, send_eof and
        wait_send_all_might_not_block), and none after aclose()."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        self._sending = True
        try:
            yield
        finally:
            self._sending = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_slot():
            if self._eof_sent:
                raise trio.ClosedResourceError("send_eof() was called: cannot send any more")
            view = memoryview(data).cast("B")

            def push() -> bool | None:
                """Hand the stack what fits; True once every byte is taken."""
                nonlocal view
                if self._conn.failure is not None:
                    raise self._broken()
                if view:
                    taken = self._call(self._conn.send, view)
                    if taken:
                        self._wake_driver()
                        view = view[taken:]
                return None if view else True

            await wait_until(self._writers, push, self._closed_meanwhile)

    async def wait_send_all_might_not_block(self) -> None:
        conn = self._conn

        def might_not_block() -> bool | None:
            blocked = (
                conn.send_space == 0
                and conn.failure is None
                and conn.state.can_send
                and not self._eof_sent
            )
            return None if blocked else True

        with self._send_slot():
            await wait_until(self._writers, might_not_block, self._closed_meanwhile)

    async def send_eof(self) -> None:
        """Half-close: our FIN goes out after the queued data; we can still receive."""

        def half_close() -> bool:
            if not self._eof_sent:
                self._eof_sent = True
                if self._conn.state.can_send:
                    self._call(self._conn.close, half=True)
                    self._wake_driver()
            return True

        with self._send_slot():
            await wait_until(self._writers, half_close, self._closed_meanwhile)

    # ---- receiving ---------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        else:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError(f"max_bytes must be >= 1, not {max_bytes}")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        conn = self._conn

        def pull() -> bytes | None:
            """In-order bytes, or b"" at the peer's FIN; None while there is nothing yet."""
            data = self._call(self._conn.receive, max_bytes)
            if data:
                self._wake_driver()  # reading may have opened the window: an update to send
                return data
            if conn.eof_received:
                return data
            if conn.failure is not None or conn.state is State.CLOSED:
                raise self._broken()
            return None

        self._receiving = True
        try:
            return await wait_until(self._readers, pull, self._closed_meanwhile)
        finally:
            self._receiving = False

    # ---- opening and closing -----------------------------------------------------------

    async def _wait_connected(self) -> None:
        conn = self._conn
        while conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
            await self._writers.park()
        if conn.failure is not None or conn.state is State.CLOSED:
            reason = conn.failure or ErrorReason.CONNECTION_RESET
            raise failure_error(reason, str(conn.remote)) from ConnectionFailed(reason)

    def _abort(self) -> None:
        """ABORT (a cancelled connect): RST now, and the stream is closed."""
        self._forget()
        if self._conn.state is not State.CLOSED:
            self._conn.abort(trio.current_time())
            self._wake_driver()
        self._wake_all()

    def _close(self) -> None:
        """CLOSE, at once: FIN after the queued data, or RST if unread data is pending."""
        self._forget()
        conn = self._conn
        now = trio.current_time()
        try:
            if conn.state.can_send and not self._eof_sent:
                conn.close(now)  # FIN, or RST if unread data is pending
            elif conn.state is not State.CLOSED and conn.readable:
                conn.abort(now)  # FIN already sent, but unread data: RST
        except (ConnectionFailed, ConnectionStateError):
            pass  # already failed or gone: nothing left to close
        conn.release()
        self._wake_driver()
        self._wake_all()

    def _forget(self) -> None:
        """Closed: no wake-ups any more, and the socket view is closed too."""
        self._closed = True
        self._owner._sockets.unwatch(self._conn, self._wake_all)
        if self._socket is not None:
            self._socket.forget()

    async def aclose(self) -> None:
        if not self._closed:
            self._close()  # before the checkpoint: a cancelled aclose still closes, gracefully
        await trio.lowlevel.checkpoint()


class TcpListener(trio.abc.Listener[TcpStream]):
    """A listening port; accept() returns each ESTABLISHED connection as a TcpStream."""

    def __init__(self, owner: UserStack, port: int, version: int = 4) -> None:
        self._owner = owner
        self._lot = ParkingLot()
        self._closed = False
        self.port = port
        self.version = version  # 4 or 6: each family has its own listener
        owner._sockets.watch_accepts(port, self._lot.unpark_all)

    @property
    def local_address(self) -> Endpoint:
        addresses = self._owner._stack.addresses
        return Endpoint(addresses.ipv6 if self.version == 6 else addresses.ipv4, self.port)

    def __repr__(self) -> str:
        return f"<TcpListener {self.local_address}>"

    async def accept(self) -> TcpStream:
        if self._closed:
            raise trio.ClosedResourceError("the listener is closed")
        stack, port, version = self._owner._stack, self.port, self.version
        conn = await wait_until(
            self._lot, lambda: stack.accept(port, version=version), lambda: self._closed
        )
        return TcpStream(self._owner, conn)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            owner = self._owner
            owner._sockets.unwatch_accepts(self.port, self._lot.unpark_all)
            owner._stack.unlisten(self.port, trio.current_time(), version=self.version)
            owner._driver.wake()
            self._lot.unpark_all()
        await trio.lowlevel.checkpoint()
