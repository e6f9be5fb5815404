"""`trio_network()`: trio's network functions, and every library on them, use a userstack.

trio looks up two hooks whenever a program makes a socket or resolves a name
(`trio.socket.set_custom_socket_factory`, `set_custom_hostname_resolver`; trio's own
`trio/testing/_fake_net.py` uses them the same way). Inside `trio_network(host)`:

- `trio.socket.socket(AF_INET, SOCK_STREAM)` is a `UserSocket` of that stack (AF_INET6
  too, when the stack has an IPv6 address), so
  `trio.open_tcp_stream`, `open_tcp_listeners`, `serve_tcp` and the libraries built on
  them (trio-websocket, httpx and anyio on trio, ...) run over the stack unchanged;
- names resolve through the stack's Resolver (numeric, `localhost`, its host table);
- any other socket (UDP, AF_UNIX, raw) raises OSError naming the stack,
  unless `kernel_fallback=True` asks for the kernel's socket explicitly;
- a TCP socket made with the stdlib (`socket.socket(AF_INET, SOCK_STREAM)`, which trio
  cannot see) is no kernel socket either: it can become a listener on the stack, handed
  to trio with `trio.socket.from_stdlib_socket` (so hypercorn's own `serve()` works), and
  any other use of it raises OSError naming the stack (stdlib.py says how);
- any other kernel socket made with the stdlib (UDP, raw, a family the stack lacks)
  raises OSError too, through an audit hook (PEP 578): nothing reaches the kernel's
  network by accident.

The choice of stack is per task (a context variable): a server task inside
`server.trio_network()` and a client task inside `client.trio_network()` use two
stacks in one trio run. Tasks started inside the block inherit it. The hooks are
installed once per run while any block is active, and what was installed before is
put back when the last one ends.
"""

from __future__ import annotations

import errno
import ipaddress
import socket as _stdlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import trio
from trio.lowlevel import RunVar

from . import stdlib
from .errors import os_error
from .host import SocketHost
from .resolver import Resolver
from .socket import UserSocket

_SOCK_FLAGS = getattr(_stdlib, "SOCK_NONBLOCK", 0) | getattr(_stdlib, "SOCK_CLOEXEC", 0)
_KERNEL_FAMILIES = {_stdlib.AF_INET, _stdlib.AF_INET6, getattr(_stdlib, "AF_PACKET", -1)}


@dataclass(frozen=True, slots=True)
class _Scope:
    host: SocketHost
    kernel_fallback: bool


_scope: ContextVar[_Scope | None] = ContextVar("userstack_trio_network", default=None)


@dataclass(slots=True)
class _Installed:
    """The hooks of one trio run, and what they replaced."""

    factory: trio.abc.SocketFactory | None
    resolver: trio.abc.HostnameResolver | None
    active: int = 0  # trio_network blocks open in this run
    previous: list[Any] = field(default_factory=list)


_installed: RunVar[_Installed | None] = RunVar("userstack_hooks", default=None)


def _families(host: SocketHost) -> set[int]:
    """The address families the stack has an address in."""
    addresses = host.stack.addresses
    return {family for family, address in ((_stdlib.AF_INET, addresses.ipv4),
                                            (_stdlib.AF_INET6, addresses.ipv6)) if address}


def _stack_socket(family: int, type: int, proto: int) -> UserSocket | None:
    """The socket of the calling task's block's stack, if it serves this kind of socket
    (TCP in a family it has an address in); else None (or not inside a block)."""
    scope = _scope.get()
    if (
        scope is None
        or family not in _families(scope.host)
        or type & ~_SOCK_FLAGS != _stdlib.SOCK_STREAM
        or proto not in (0, _stdlib.IPPROTO_TCP)
    ):
        return None
    return UserSocket(scope.host, proto, family=family)


def _block_resolver() -> Resolver | None:
    """The names of the calling task's block's stack, or None outside any block."""
    scope = _scope.get()
    return None if scope is None else scope.host.resolver


def _refusal(family: int, type: int, proto: int) -> OSError:
    kind = type & ~_SOCK_FLAGS
    code = (errno.EAFNOSUPPORT if family not in (_stdlib.AF_INET, _stdlib.AF_INET6)
            else errno.EPROTONOSUPPORT)
    return os_error(
        code,
        f"socket(family={family}, type={kind}, proto={proto}) inside userstack "
        "trio_network(): the userstack serves SOCK_STREAM (TCP) in the families it has an "
        "address in; pass kernel_fallback=True to give other sockets to the kernel",
    )


class _Factory(trio.abc.SocketFactory):
    def __init__(self, previous: trio.abc.SocketFactory | None) -> None:
        self._previous = previous

    def socket(
        self, family: int = _stdlib.AF_INET, type: int = _stdlib.SOCK_STREAM, proto: int = 0
    ) -> trio.socket.SocketType:
        scope = _scope.get()
        if scope is not None:
            stack_socket = _stack_socket(family, type, proto)
            if stack_socket is not None:
                return stack_socket
            if not scope.kernel_fallback:
                if family == _stdlib.AF_INET6 and type & ~_SOCK_FLAGS == _stdlib.SOCK_STREAM:
                    raise os_error(errno.EAFNOSUPPORT, "this userstack has no IPv6 address")
                raise _refusal(family, type, proto)
        return self._kernel_socket(family, type, proto)

    def _kernel_socket(self, family: int, type: int, proto: int) -> trio.socket.SocketType:
        """Outside any block (another task), or asked for with kernel_fallback."""
        if self._previous is not None:
            return self._previous.socket(family, type, proto)
        with _kernel_allowed():
            return trio.socket.from_stdlib_socket(_stdlib.socket(family, type, proto))


class _Resolver(trio.abc.HostnameResolver):
    def __init__(self, previous: trio.abc.HostnameResolver | None) -> None:
        self._previous = previous

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        scope = _scope.get()
        if scope is not None:
            await trio.lowlevel.checkpoint()
            return scope.host.resolver.getaddrinfo(host, port, family, type, proto, flags)
        if self._previous is not None:
            return await self._previous.getaddrinfo(host, port, family, type, proto, flags)
        return await trio.to_thread.run_sync(
            _stdlib.getaddrinfo, host, port, family, type, proto, flags, abandon_on_cancel=True
        )

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        scope = _scope.get()
        if scope is not None:
            await trio.lowlevel.checkpoint()
            return scope.host.resolver.getnameinfo(sockaddr, flags)
        if self._previous is not None:
            return await self._previous.getnameinfo(sockaddr, flags)
        return await trio.to_thread.run_sync(
            _stdlib.getnameinfo, sockaddr, flags, abandon_on_cancel=True
        )


@contextmanager
def trio_network(host: SocketHost, *, kernel_fallback: bool = False) -> Iterator[None]:
    """See the module docstring. Must be entered inside trio.run."""
    _install_guard()
    stdlib.install(_stack_socket, _block_resolver)
    installed = _installed.get()
    if installed is None:
        factory = _Factory(None)
        resolver = _Resolver(None)
        previous_factory = trio.socket.set_custom_socket_factory(factory)
        previous_resolver = trio.socket.set_custom_hostname_resolver(resolver)
        factory._previous, resolver._previous = previous_factory, previous_resolver
        installed = _Installed(previous_factory, previous_resolver)
        _installed.set(installed)
    installed.active += 1
    token = _scope.set(_Scope(host, kernel_fallback))
    try:
        yield
    finally:
        _scope.reset(token)
        installed.active -= 1
        if installed.active == 0:
            trio.socket.set_custom_socket_factory(installed.factory)
            trio.socket.set_custom_hostname_resolver(installed.resolver)
            _installed.set(None)


# ---- the guard: no kernel socket inside a block, unless asked for ---------------------

_allowed: ContextVar[bool] = ContextVar("userstack_kernel_allowed", default=False)
_guard_installed = False


@contextmanager
def _kernel_allowed() -> Iterator[None]:
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


# The stdlib's other name lookups (getaddrinfo is redirected in stdlib.py): each may ask
# the host's DNS, so inside a block they are refused unless the name is numeric.
_LOOKUP_EVENTS = frozenset({"socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"})


def _guard(event: str, args: tuple[Any, ...]) -> None:
    """PEP 578 audit hook: refuse a kernel network socket made inside a block, and a
    stdlib name lookup that could reach the host's resolver."""
    if event != "socket.__new__" and event not in _LOOKUP_EVENTS:
        return
    scope = _scope.get()
    if scope is None or scope.kernel_fallback or _allowed.get():
        return
    if event in _LOOKUP_EVENTS:
        _refuse_lookup(event, args[0])
        return
    family = args[1]
    if family in _KERNEL_FAMILIES:
        raise os_error(
            errno.EACCES,
            f"a kernel socket (family={family}) inside userstack trio_network(): this "
            "code made its own socket with the stdlib, which trio cannot redirect; use "
            "trio's network functions, or trio_network(kernel_fallback=True)",
        )


def _refuse_lookup(event: str, name: Any) -> None:
    """A lookup of a numeric address never leaves the process; any other is refused."""
    host = name[0] if isinstance(name, tuple) else name
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise os_error(
            errno.EACCES,
            f"{event.removeprefix('socket.')}({host!r}) inside userstack trio_network() "
            "would ask the host's resolver; use trio's network functions or "
            "socket.getaddrinfo, which resolve in the stack's table",
        ) from None


def _install_guard() -> None:
    """Once per process (audit hooks cannot be removed; outside a block it is a no-op)."""
    global _guard_installed
    if not _guard_installed:
        sys.addaudithook(_guard)
        _guard_installed = True
