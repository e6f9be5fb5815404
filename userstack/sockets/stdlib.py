"""Listeners made with the stdlib inside `trio_network()`, so that servers which bind
their own listening sockets (hypercorn's `serve()`) run on the stack unchanged.

Why this is needed
------------------
hypercorn's trio `serve(app, config)` never asks trio for its listeners: its
`Config.create_sockets()` makes each with the stdlib (`socket.socket(AF_INET,
SOCK_STREAM)`, `setsockopt`, `bind`, `setblocking`, `set_inheritable`), then `listen()`,
and hands it to trio with `trio.socket.from_stdlib_socket(sock)`. trio's hooks (its socket
factory) never see that socket, and no public hook of the stdlib or of trio lets anyone
substitute it. A kernel socket bound there would be the kernel's listener, on the
kernel's network: the trap trio_network() exists to close.

How it works (installed once per process by the first `trio_network()`)
-----------------------------------------------------------------------
Two entry points are wrapped, and each wrapper changes nothing unless the calling task is
inside a block (the same context variable that picks the stack for trio's factory):

- `socket.socket.__new__`: inside a block, `socket.socket(family, SOCK_STREAM)` for a
  family the stack has an address in (no `fileno`, the class itself, not a subclass) makes
  a `StdlibListener` instead, and **no kernel socket is created at all**. It wraps a
  `UserSocket` of the block's stack and takes what a listener is built with: `setsockopt`,
  `getsockopt`, `bind`, `listen`, `setblocking`, `settimeout`, `set_inheritable`,
  `getsockname`, `family`, `type`, `proto`, `close`. `bind` goes to the stack: an address
  it does not own fails with EADDRNOTAVAIL, as the kernel's bind(2) would.
  Every other call (`connect`, `accept`, `send`, `recv`, `makefile`, `fileno`, ...) raises
  OSError(EACCES) naming the stack: the stdlib's own blocking calls cannot run on the
  stack, and they must never reach the kernel. So a stdlib *client* inside a block still
  fails loudly; only the listener pattern works.
- `trio.socket.from_stdlib_socket`: given a `StdlibListener`, it returns its `UserSocket`
  (which trio.SocketListener then serves); given anything else, it is trio's own.

- `socket.getaddrinfo`: inside a block, a name (not a numeric-only lookup, which never
  leaves the process; trio makes one first) resolves in the stack's table, as trio's own
  lookups do there, and not through the host's DNS (which would send a query out of the
  kernel's network: `socket.create_connection("name", ...)` resolves before it makes its
  socket).

Any other stdlib socket inside a block (UDP, raw, a family the stack lacks) is still
refused by the audit hook (network.py). Outside a block, and in every task and thread
that is not inside one, both wrappers call straight through: the kernel's sockets are
untouched.
"""

from __future__ import annotations

import errno
import socket as _stdlib
from collections.abc import Callable
from typing import Any

import trio

from .errors import os_error
from .resolver import Resolver
from .socket import UserSocket

# Who decides: for (family, type, proto), the UserSocket of the caller's block, or None.
StackSocketFor = Callable[[int, int, int], UserSocket | None]
BlockResolver = Callable[[], Resolver | None]  # the names of the caller's block, or None
_NUMERIC_ONLY = _stdlib.AI_NUMERICHOST | _stdlib.AI_NUMERICSERV


class StdlibListener:
    """What `socket.socket(AF_INET, SOCK_STREAM)` makes inside a trio_network() block: a
    listener-to-be on the stack, never a kernel socket (see the module docstring)."""

    __slots__ = ("socket",)

    def __init__(self, socket: UserSocket) -> None:
        self.socket = socket

    @property
    def family(self) -> _stdlib.AddressFamily:
        return self.socket.family

    @property
    def type(self) -> _stdlib.SocketKind:
        return self.socket.type

    @property
    def proto(self) -> int:
        return self.socket.proto

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        if optlen is not None:
            raise os_error(errno.EINVAL, "setsockopt with an optlen on a userstack socket")
        self.socket.setsockopt(level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        return self.socket.getsockopt(level, optname, buflen)

    def bind(self, address: Any) -> None:
        self.socket.bind_now(address)

    def listen(self, backlog: int = 128) -> None:
        self.socket.listen(backlog)

    def setblocking(self, flag: bool) -> None:
        """Accepted and ignored: the stack's socket is trio's, and never blocks."""

    def settimeout(self, value: float | None) -> None:
        """Accepted and ignored, as setblocking()."""

    def set_inheritable(self, inheritable: bool) -> None:
        """Accepted and ignored (hypercorn asks, for workers it forks): there is no
        descriptor to inherit, and a child never shares this process's stack."""

    def get_inheritable(self) -> bool:
        return False

    def getsockname(self) -> Any:
        return self.socket.getsockname()

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> StdlibListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StdlibListener of {self.socket!r}>"

    def __getattr__(self, name: str) -> Any:
        if hasattr(_stdlib.socket, name):
            raise os_error(
                errno.EACCES,
                f"socket.{name}() on a stdlib socket made inside userstack trio_network(): "
                "such a socket can only be made into a listener and handed to "
                "trio.socket.from_stdlib_socket(); use trio's sockets for the rest",
            )
        raise AttributeError(name)


_installed = False


def install(stack_socket_for: StackSocketFor, block_resolver: BlockResolver) -> None:
    """Wrap socket.socket.__new__, trio.socket.from_stdlib_socket and
    socket.getaddrinfo, once per process (a wrapper cannot be taken back safely while
    other code may hold it; outside a block each calls straight through)."""
    global _installed
    if _installed:
        return
    _installed = True
    kernel_new = _stdlib.socket.__new__
    kernel_class = _stdlib.socket
    trio_from_stdlib = trio.socket.from_stdlib_socket
    kernel_getaddrinfo = _stdlib.getaddrinfo

    def new(cls: type, family: int = -1, type: int = -1, proto: int = -1,
            fileno: int | None = None) -> Any:
        if cls is kernel_class and fileno is None:
            # socket.socket()'s own defaults, as its __init__ applies them
            stack_socket = stack_socket_for(
                _stdlib.AF_INET if family == -1 else family,
                _stdlib.SOCK_STREAM if type == -1 else type,
                0 if proto == -1 else proto,
            )
            if stack_socket is not None:
                return StdlibListener(stack_socket)
        return kernel_new(cls, family, type, proto, fileno)

    def from_stdlib_socket(sock: Any) -> trio.socket.SocketType:
        if isinstance(sock, StdlibListener):
            return sock.socket
        return trio_from_stdlib(sock)

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list[Any]:
        resolver = None if flags & _NUMERIC_ONLY == _NUMERIC_ONLY else block_resolver()
        if resolver is not None:
            return resolver.getaddrinfo(host, port, family, type, proto, flags)
        return kernel_getaddrinfo(host, port, family, type, proto, flags)

    from_stdlib_socket.__doc__ = trio_from_stdlib.__doc__
    getaddrinfo.__doc__ = kernel_getaddrinfo.__doc__
    _stdlib.socket.__new__ = staticmethod(new)  # type: ignore[assignment]
    trio.socket.from_stdlib_socket = from_stdlib_socket
    _stdlib.getaddrinfo = getaddrinfo
