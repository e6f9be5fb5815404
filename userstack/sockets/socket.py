"""A `trio.socket.SocketType` for TCP on the userstack (AF_INET, and AF_INET6 when the
stack has an IPv6 address), with Linux's semantics.

`UserSocket` is what `trio.socket.socket()` returns inside `UserStack.trio_network()`:
the calls, errnos and options of socket(7), tcp(7) and ip(7), served by the stack
through its ConnectionHandle (the one door to a connection). Everything trio's own
socket is for TCP, so trio.SocketStream, SocketListener, open_tcp_stream and the
libraries built on them run on it unchanged:

    bind        port 0 picks a free one; bind before connect fixes the local port
    listen      passive OPEN; accept() returns (UserSocket, peer address)
    connect     active OPEN; `start_connect` is the non-blocking form (EINPROGRESS, then
                wait_writable and SO_ERROR), `connect` waits for the handshake
    send/recv   SEND / RECEIVE; recv gives b"" at the peer's FIN, or after SHUT_RD
    shutdown    SHUT_WR sends our FIN; SHUT_RD stops reading, so a later close with
                unread data sends RST (RFC 9293 3.10.4, RFC 1122 4.2.2.13)
    close       CLOSE, or ABORT with SO_LINGER {1, 0}; never blocks (trio's close is sync)

Errors are OSError with the kernel's errno: a failed connection's reason (ECONNREFUSED,
ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ...) is reported once, by the next call or by
getsockopt(SO_ERROR) (Linux's sk_err); after that, send gives EPIPE and recv b"".
Waits are level-triggered (waiting.py), so cancelling recv or accept loses nothing and
leaves the socket usable. Cancelling connect closes the socket, as trio's own does.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import socket as _stdlib
from collections.abc import Callable
from enum import Enum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

import trio
from trio.lowlevel import ParkingLot

from ..stack import ConnectionHandle
from ..tcp.config import TcpConfig
from ..tcp.errors import ConnectionFailed, ConnectionStateError
from ..tcp.info import TcbInfo
from ..tcp.state import State
from ..wire.addr import Endpoint
from .errors import failure_error, os_error
from .host import SocketHost
from .options import (
    Option,
    SocketOptions,
    as_bytes,
    congestion_name,
    set_option,
    stored_value,
)
from .waiting import wait_until

_T = TypeVar("_T")
_HANDSHAKE = (State.SYN_SENT, State.SYN_RECEIVED)
_SEND_FLAGS = getattr(_stdlib, "MSG_NOSIGNAL", 0) | _stdlib.MSG_DONTWAIT  # no SIGPIPE in Python
_RECV_FLAGS = _stdlib.MSG_DONTWAIT
_fake_fds = itertools.count(1 << 20)  # fileno(): a number, never an OS descriptor


class Mode(Enum):
    FRESH = "fresh"  # socket(): nothing yet
    BOUND = "bound"  # bind(): holds a local port
    LISTENING = "listening"
    OPEN = "open"  # connect() or accept(): a connection (perhaps still in the handshake)
    CLOSED = "closed"


class UserSocket(trio.socket.SocketType):
    """One AF_INET / SOCK_STREAM socket of a userstack; see the module docstring."""

    def __init__(
        self,
        host: SocketHost,
        proto: int = 0,
        *,
        family: int = _stdlib.AF_INET,
        handle: ConnectionHandle | None = None,
        options: SocketOptions | None = None,
    ) -> None:
        super().__init__()
        self._host = host
        self._proto = proto
        if handle is not None:
            family = _stdlib.AF_INET6 if handle.local.ip.version == 6 else _stdlib.AF_INET
        self._family = _stdlib.AddressFamily(family)
        self._version = 6 if family == _stdlib.AF_INET6 else 4  # the stack's name for it
        self._options = options or SocketOptions()
        self._fd = next(_fake_fds)
        self._mode = Mode.FRESH
        self._bound: tuple[IPv4Address | IPv6Address, int] | None = None  # what bind() holds
        self._handle: ConnectionHandle | None = None
        self._failure_reported = False  # the handle's failure was raised (or read) once
        self._shut_rd = False
        self._shut_wr = False
        self._lot = ParkingLot()  # every waiter; woken whenever the connection changed
        self._busy: set[str] = set()  # "recv", "send", "accept": one task each (trio's rule)
        if handle is not None:
            self._open(handle)

    # ---- what it is ------------------------------------------------------------------

    @property
    def family(self) -> _stdlib.AddressFamily:
        return self._family

    @property
    def type(self) -> _stdlib.SocketKind:
        return _stdlib.SOCK_STREAM

    @property
    def proto(self) -> int:
        return self._proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._shut_wr

    @property
    def mode(self) -> Mode:
        return self._mode

    def fileno(self) -> int:
        """-1 once closed (what trio.SocketStream checks); otherwise a number that names
        this socket but is no OS file descriptor."""
        return -1 if self._mode is Mode.CLOSED else self._fd

    def __repr__(self) -> str:
        return f"<userstack socket {self._mode.value} {self._names()}>"

    def _names(self) -> str:
        try:
            ip, port = self.getsockname()
        except OSError:
            return "closed"
        try:
            peer_ip, peer_port = self.getpeername()
        except OSError:
            return f"{ip}:{port}"
        return f"{ip}:{port} -> {peer_ip}:{peer_port}"

    def getsockname(self) -> Any:
        self._check_open()
        if self._handle is not None:
            local = self._handle.local
            return self._sockaddr(local.ip, local.port)
        if self._bound is not None:
            return self._sockaddr(*self._bound)
        return self._sockaddr(self._wildcard, 0)

    def _sockaddr(self, ip: IPv4Address | IPv6Address, port: int) -> Any:
        """(host, port), or (host, port, flowinfo, scope_id) for AF_INET6."""
        return (str(ip), port, 0, 0) if self._version == 6 else (str(ip), port)

    @property
    def _wildcard(self) -> IPv4Address | IPv6Address:
        return IPv6Address(0) if self._version == 6 else IPv4Address(0)

    def getpeername(self) -> Any:
        self._check_open()
        handle = self._handle
        if handle is None or handle.state in (State.SYN_SENT, State.CLOSED):
            raise os_error(errno.ENOTCONN, "getpeername: not connected")
        return self._sockaddr(handle.remote.ip, handle.remote.port)

    def info(self) -> TcbInfo:
        """TCP_INFO: a snapshot of the connection's TCB."""
        return self._need_handle("TCP_INFO").info(trio.current_time())

    def readable_bytes(self) -> int:
        """SIOCINQ (FIONREAD): bytes received in order and not yet read."""
        if self._mode is Mode.LISTENING:
            raise os_error(errno.EINVAL, "SIOCINQ on a listening socket")
        return 0 if self._handle is None else self._handle.readable

    def unsent_bytes(self) -> int:
        """SIOCOUTQ: bytes given to send() that the peer has not acknowledged yet."""
        if self._mode is Mode.LISTENING:
            raise os_error(errno.EINVAL, "SIOCOUTQ on a listening socket")
        if self._handle is None or self._handle.state is State.CLOSED:
            return 0
        return self._handle.info(trio.current_time()).send_q

    def is_readable(self) -> bool:
        """What poll(POLLIN) would say: data, EOF, an error, or a connection to accept."""
        if self._mode is Mode.LISTENING:
            stack, port = self._host.stack, self._bound[1]  # type: ignore[index]
            return stack.accept_pending(port, version=self._version) > 0
        handle = self._handle
        if handle is None:
            return True  # an unconnected socket polls POLLHUP, as on Linux
        return bool(
            handle.readable
            or handle.eof_received
            or handle.failure is not None
            or handle.state is State.CLOSED
            or self._shut_rd
        )

    # ---- errors ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._mode is Mode.CLOSED:
            raise os_error(errno.EBADF, "the socket is closed")

    def _need_handle(self, what: str) -> ConnectionHandle:
        self._check_open()
        if self._handle is None:
            raise os_error(errno.ENOTCONN, f"{what}: not connected")
        return self._handle

    def _take_error(self) -> OSError | None:
        """The connection's failure, once (Linux's sk_err): then it is reported."""
        handle = self._handle
        if handle is None or handle.failure is None or self._failure_reported:
            return None
        self._failure_reported = True
        return failure_error(handle.failure, str(handle.remote))

    def _call(self, user_call: Callable[..., _T], *args: object, **kwargs: object) -> _T:
        """A user call on the handle at `now`; the core's refusals become errnos."""
        try:
            return user_call(*args, trio.current_time(), **kwargs)
        except ConnectionFailed as e:
            error = self._take_error() or os_error(errno.EPIPE, str(e))
            raise error from e
        except ConnectionStateError as e:
            raise os_error(errno.EPIPE, str(e)) from e

    # ---- wake-ups and waiting -------------------------------------------------------

    def _wake(self) -> None:
        self._lot.unpark_all()

    def _closed(self) -> bool:
        return self._mode is Mode.CLOSED

    async def _wait(self, slot: str, attempt: Callable[[], _T | None]) -> _T:
        if slot in self._busy:
            raise trio.BusyResourceError(f"another task is already in {slot}() on this socket")
        self._busy.add(slot)
        try:
            return await wait_until(self._lot, attempt, self._closed)
        finally:
            self._busy.discard(slot)

    # ---- bind, listen, accept --------------------------------------------------------

    def _local_ip(self, host: object) -> IPv4Address | IPv6Address:
        """bind()'s address: the wildcard, this stack's own address, or loopback (= own)."""
        if host in ("", None):
            return self._wildcard
        try:
            address = self._host.resolver.resolve(host, passive=True)  # type: ignore[arg-type]
        except OSError as e:
            raise os_error(errno.EADDRNOTAVAIL, f"bind({host!r}): {e}") from e
        if address not in (self._wildcard, *self._host.stack.addresses.all):
            raise os_error(errno.EADDRNOTAVAIL, f"bind({host}): not this userstack's address")
        if address.version != self._version:
            raise os_error(errno.EAFNOSUPPORT, f"bind({host}) on an IPv{self._version} socket")
        return address

    async def bind(self, address: Any) -> None:
        await trio.lowlevel.checkpoint()
        self.bind_now(address)

    def bind_now(self, address: Any) -> None:
        """bind(2) without the checkpoint (the packetdrill runner calls it in line)."""
        self._check_open()
        host, port = _split(address)
        if self._mode is not Mode.FRESH:
            raise os_error(errno.EINVAL, "bind: the socket is already bound")
        ip = self._local_ip(host)
        port = self._host.bind_port(port, reuse=self._options.reuseaddr, version=self._version)
        self._bound = (ip, port)
        self._mode = Mode.BOUND

    def _release_port(self) -> None:
        if self._bound is not None:
            self._host.release_port(
                self._bound[1], reuse=self._options.reuseaddr, version=self._version
            )

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._mode is Mode.LISTENING:
            return  # Linux only changes the backlog
        if self._mode is Mode.OPEN:
            raise os_error(errno.EINVAL, "listen on a connected socket")
        if self._mode is Mode.FRESH:
            self.bind_now(("", 0))  # autobind, as Linux does
        assert self._bound is not None
        port = self._bound[1]
        stack = self._host.stack
        stack.listen(port, max(1, backlog), config=self._config(), version=self._version)
        self._mode = Mode.LISTENING
        self._host.watch_accepts(port, self._wake)

    def _stop_listening(self) -> None:
        assert self._bound is not None
        port = self._bound[1]
        self._host.unwatch_accepts(port, self._wake)
        self._host.stack.unlisten(port, trio.current_time(), version=self._version)
        self._host.wake_driver()

    async def accept(self) -> tuple[UserSocket, tuple[str, int]]:
        self._check_open()
        stack = self._host.stack

        def take() -> ConnectionHandle | None:
            if self._mode is not Mode.LISTENING:
                raise os_error(errno.EINVAL, "accept on a socket that is not listening")
            return stack.accept(self._bound[1], version=self._version)  # type: ignore[index]

        handle = await self._wait("accept", take)
        child = UserSocket(self._host, self._proto, handle=handle, options=self._options.copy())
        child._apply_live_options()  # options set on the listener after listen()
        return child, child._sockaddr(handle.remote.ip, handle.remote.port)

    # ---- connect ---------------------------------------------------------------------

    def start_connect(self, address: Any) -> None:
        """connect(2) on a non-blocking socket: the SYN goes out and BlockingIOError
        (EINPROGRESS) is raised; wait_writable() returns once the handshake ended, and
        getsockopt(SO_ERROR) says how. Errors known at once raise at once (ENETUNREACH
        for a broadcast address, EADDRNOTAVAIL, EISCONN, EALREADY)."""
        self._check_open()
        if self._mode is Mode.LISTENING:
            raise os_error(errno.EISCONN, "connect on a listening socket")
        handle = self._handle
        if handle is not None:
            if handle.state in _HANDSHAKE and handle.failure is None:
                raise os_error(errno.EALREADY, "connect: already connecting")
            if handle.failure is None or handle.state.synchronized:
                raise os_error(errno.EISCONN, "connect: already connected")
            self._host.unwatch(handle, self._wake)  # a failed attempt: try again
            handle.release()
            self._handle = None
        host, port = _split(address)
        try:
            ip = self._host.resolver.resolve(host)
        except OSError as e:
            raise os_error(errno.EINVAL, f"connect({host!r}): {e}") from e
        if ip.version != self._version:  # no IPv4-mapped IPv6 addresses here
            raise os_error(errno.EAFNOSUPPORT, f"connect({host!r}) on an IPv{self._version} socket")
        if ip == self._wildcard:  # Linux: connecting to the wildcard means loopback
            ip = self._host.stack.addresses.local_for(ip)
        local_port = self._bound[1] if self._bound is not None else None
        handle = self._host.connect(
            Endpoint(ip, port), trio.current_time(), config=self._config(), local_port=local_port
        )
        self._open(handle)
        self._host.wake_driver()
        raise BlockingIOError(errno.EINPROGRESS, "Operation now in progress")

    async def connect(self, address: Any) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        with contextlib.suppress(BlockingIOError):  # EINPROGRESS: the SYN is out
            self.start_connect(address)
        try:
            await self.wait_writable()
        except trio.Cancelled:
            self.close()  # as trio's own socket: a cancelled connect leaves it closed
            raise
        error = self._take_error()
        if error is not None:
            raise error

    async def wait_writable(self) -> None:
        """Until send() would not block: the handshake ended, or there is send space, or
        sending can only fail now."""

        def writable() -> bool | None:
            handle = self._handle
            if handle is None or handle.failure is not None or self._shut_wr:
                return True
            if handle.state in _HANDSHAKE:
                return None
            if handle.send_space or not handle.state.can_send:
                return True
            return None

        self._check_open()
        await self._wait("send", writable)

    def _open(self, handle: ConnectionHandle) -> None:
        self._handle = handle
        self._failure_reported = False
        self._mode = Mode.OPEN
        self._host.watch(handle, self._wake)

    def _config(self) -> TcpConfig:
        return self._options.to_config(self._host.stack.config)

    # ---- send and receive -----------------------------------------------------------

    async def send(self, data: Any, flags: int = 0, /) -> int:
        if flags & ~_SEND_FLAGS:
            raise os_error(errno.EOPNOTSUPP, f"send flags {flags:#x}: not in the userstack")
        view = memoryview(data).cast("B")
        self._check_open()

        def push() -> int | None:
            handle = self._handle
            if handle is None:
                raise os_error(errno.EPIPE, "send on a socket that is not connected")
            error = self._take_error()
            if error is not None:
                raise error
            if self._shut_wr or handle.failure is not None or not handle.state.can_send:
                raise os_error(errno.EPIPE, "send after shutdown(SHUT_WR) or close")
            if handle.state in _HANDSHAKE:
                return None  # a blocking send waits for the handshake
            if not view:
                return 0
            if handle.send_space == 0:
                return None
            taken = self._call(handle.send, view)
            self._host.wake_driver()
            return taken

        if flags & _stdlib.MSG_DONTWAIT:
            return await _once(push)
        return await self._wait("send", push)

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        if flags & ~_RECV_FLAGS:
            raise os_error(errno.EOPNOTSUPP, f"recv flags {flags:#x}: not in the userstack")
        if buflen < 0:
            raise ValueError("negative buffersize in recv")
        self._check_open()
        attempt = self._pull(buflen)
        if flags & _stdlib.MSG_DONTWAIT:
            return await _once(attempt)
        return await self._wait("recv", attempt)

    def _pull(self, buflen: int) -> Callable[[], bytes | None]:
        def pull() -> bytes | None:
            handle = self._handle
            if handle is None:
                raise os_error(errno.ENOTCONN, "recv on a socket that is not connected")
            if self._shut_rd:
                return b""
            if handle.failure is not None:
                error = self._take_error()
                if error is not None:
                    raise error
                return b""
            if handle.state in _HANDSHAKE:
                return None
            if handle.readable and buflen:
                data = self._call(handle.receive, buflen)
                self._host.wake_driver()  # reading may have opened the window
                return data
            if handle.eof_received or handle.state is State.CLOSED or not buflen:
                return b""
            return None

        return pull

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        view = memoryview(buffer).cast("B")
        data = await self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, None]:
        """recv, and no address: Linux gives none for TCP."""
        return await self.recv(bufsize, flags), None

    # ---- shutdown and close ---------------------------------------------------------

    def shutdown(self, flag: int) -> None:
        self._check_open()
        if flag not in (_stdlib.SHUT_RD, _stdlib.SHUT_WR, _stdlib.SHUT_RDWR):
            raise os_error(errno.EINVAL, f"shutdown({flag})")
        if self._mode is Mode.LISTENING and flag != _stdlib.SHUT_WR:
            self._stop_listening()  # Linux: a listener shut down for reading stops
            self._mode = Mode.BOUND
            self._wake()
            return
        handle = self._handle
        if handle is None or handle.state is State.CLOSED:
            raise os_error(errno.ENOTCONN, "shutdown: not connected")
        if flag in (_stdlib.SHUT_RD, _stdlib.SHUT_RDWR):
            self._shut_rd = True
        if flag in (_stdlib.SHUT_WR, _stdlib.SHUT_RDWR) and not self._shut_wr:
            self._shut_wr = True
            if handle.state.can_send:
                self._call(handle.close, half=True)  # our FIN after the queued data
                self._host.wake_driver()
        self._wake()

    def close(self) -> None:
        """CLOSE at once: our FIN after the queued data; RST instead when unread data is
        pending (also after SHUT_RD: RFC 9293 3.10.4, RFC 1122 4.2.2.13) or SO_LINGER is
        {on, 0 s} (ABORT, socket(7)). The TCB lives on in the stack (FIN-WAIT, TIME-WAIT)."""
        if self._mode is Mode.CLOSED:
            return
        mode, self._mode = self._mode, Mode.CLOSED
        if mode is Mode.LISTENING:
            self._stop_listening()
        handle = self._handle
        if handle is not None:
            self._host.unwatch(handle, self._wake)
            now = trio.current_time()
            try:
                if handle.state is not State.CLOSED:
                    if self._options.linger == (True, 0) or handle.readable:
                        handle.abort(now)
                    else:
                        handle.close(now)  # FIN (or RST if data is still arriving in order)
            except (ConnectionFailed, ConnectionStateError):
                pass  # already failed or gone: nothing left to close
            handle.release()
            self._host.wake_driver()
        self._release_port()
        self._wake()

    def forget(self) -> None:
        """The owner of the connection (a TcpStream) closed it: this view of it is closed
        too, without a CLOSE of its own."""
        if self._handle is not None:
            self._host.unwatch(self._handle, self._wake)
        self._mode = Mode.CLOSED
        self._wake()

    def __enter__(self) -> UserSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dup(self) -> UserSocket:
        raise os_error(errno.EOPNOTSUPP, "dup(): a userstack socket has no OS descriptor")

    def detach(self) -> int:
        raise os_error(errno.EOPNOTSUPP, "detach(): a userstack socket has no OS descriptor")

    def get_inheritable(self) -> bool:
        return False

    def set_inheritable(self, inheritable: bool) -> None:
        if inheritable:
            raise os_error(errno.EOPNOTSUPP, "a userstack socket cannot pass to a child")

    # ---- options ---------------------------------------------------------------------

    def setsockopt(
        self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None
    ) -> None:
        option = self._option(level, optname)
        if value is None:
            raise os_error(errno.EINVAL, f"{option.name}: no value")
        if option is Option.TCP_CONGESTION and (
            self._handle is not None or self._mode is Mode.LISTENING
        ):
            raise os_error(errno.EISCONN, "TCP_CONGESTION: set it before connect or listen")
        set_option(self._options, option, value)
        if self._handle is not None and self._handle.state is not State.CLOSED:
            self._apply_live(option)

    def _option(self, level: int, optname: int) -> Option:
        """The option, or OSError: EBADF when closed, ENOPROTOOPT when unknown (also an
        IPv6 option on an AF_INET socket, as Linux answers)."""
        self._check_open()
        option = Option.of(level, optname)
        if option is Option.IPV6_V6ONLY and self._version != 6:
            raise os_error(errno.ENOPROTOOPT, "IPV6_V6ONLY on an AF_INET socket")
        return option

    def _apply_live(self, option: Option) -> None:
        """An option set on an open connection, applied as the kernel applies it."""
        handle, options, now = self._handle, self._options, trio.current_time()
        assert handle is not None
        if option is Option.TCP_NODELAY and options.nodelay is not None:
            handle.set_nodelay(options.nodelay, now)
        elif option is Option.SO_KEEPALIVE and options.keepalive is not None:
            handle.set_keepalive(options.keepalive, now)
        elif option is Option.IP_TOS and options.tos is not None:
            handle.set_tos(options.tos, now)
        elif option in _LIVE_TUNES:
            handle.retune(now, **options.live_changes())
        self._host.wake_driver()

    def _apply_live_options(self) -> None:
        for option in (Option.TCP_NODELAY, Option.SO_KEEPALIVE, Option.IP_TOS, Option.IP_TTL):
            self._apply_live(option)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        option = self._option(level, optname)
        if option is Option.TCP_CONGESTION:
            return congestion_name(self._current_config().congestion, buflen)
        value = self._option_value(option)
        if option is Option.TCP_INFO:
            return value
        if option is Option.SO_LINGER:
            on, seconds = self._options.linger
            packed = as_bytes(int(on), 4) + as_bytes(seconds, 4)
            return packed[:buflen] if buflen else int(on)
        return as_bytes(value, buflen) if buflen else value

    def _option_value(self, option: Option) -> Any:
        handle = self._handle
        match option:
            case Option.SO_ERROR:
                error = self._take_error()
                return 0 if error is None else error.errno
            case Option.SO_TYPE:
                return int(_stdlib.SOCK_STREAM)
            case Option.SO_DOMAIN:
                return int(self._family)
            case Option.SO_PROTOCOL:
                return _stdlib.IPPROTO_TCP
            case Option.SO_ACCEPTCONN:
                return int(self._mode is Mode.LISTENING)
            case Option.SO_LINGER:
                return 0
            case Option.TCP_INFO:
                return self.info()
            case Option.TCP_MAXSEG if handle is not None and handle.state.synchronized:
                return handle.info(trio.current_time()).mss  # the effective send MSS
        return stored_value(self._options, self._current_config(), option)

    def _current_config(self) -> TcpConfig:
        """The connection's TcpConfig, or the one it would get from the options now."""
        return self._handle.config if self._handle is not None else self._config()


_LIVE_TUNES = frozenset(
    {
        Option.TCP_KEEPIDLE, Option.TCP_KEEPINTVL, Option.TCP_KEEPCNT,
        Option.TCP_USER_TIMEOUT, Option.IP_TTL,
    }
)


async def _once(attempt: Callable[[], _T | None]) -> _T:
    """MSG_DONTWAIT: one attempt, EAGAIN if it would have to wait (after a checkpoint)."""
    await trio.lowlevel.checkpoint()
    result = attempt()
    if result is None:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    return result


def _split(address: Any) -> tuple[Any, int]:
    """(host, port) from an AF_INET address, or from an AF_INET6 one with its flowinfo
    and scope_id (both 0 here: no link-local scopes)."""
    if not isinstance(address, tuple) or len(address) not in (2, 4):
        raise TypeError(f"address must be (host, port) or (host, port, 0, 0), not {address!r}")
    host, port = address[:2]
    if not isinstance(port, int):
        raise TypeError(f"port must be an int, not {port!r}")
    return host, port
