"""What the sockets of one stack share: the stack, the wake-ups, the bound ports, the names.

The driver tells the user layer which connections changed (`Stack.take_changed`); the
host turns that into wake-ups for whoever watches those connections (sockets, streams)
and for whoever waits to accept on a port. It also keeps the ports that sockets have
bound but not yet turned into a listener or a connection (bind(2) holds a port at
once), since the sans-I/O stack only knows listeners and connections.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from ..stack import ConnectionHandle, Stack
from ..tcp.config import TcpConfig
from ..wire.addr import Endpoint
from .errors import os_error
from .resolver import Resolver

Wake = Callable[[], None]


class SocketHost:
    def __init__(self, stack: Stack, wake_driver: Wake) -> None:
        self.stack = stack
        self.wake_driver = wake_driver  # a user call queued packets or moved a deadline
        self.resolver = Resolver(stack.addresses.ipv4, stack.addresses.ipv6)
        self._watchers: dict[ConnectionHandle, list[Wake]] = {}
        self._accept_watchers: dict[int, list[Wake]] = {}
        # (IP version, port) -> SO_REUSEADDR of each socket bound there; the families'
        # ports are apart, as for a Linux IPv6 socket with IPV6_V6ONLY
        self._bound: dict[tuple[int, int], list[bool]] = {}

    # ---- wake-ups --------------------------------------------------------------------

    def watch(self, handle: ConnectionHandle, wake: Wake) -> None:
        self._watchers.setdefault(handle, []).append(wake)

    def unwatch(self, handle: ConnectionHandle, wake: Wake) -> None:
        wakes = self._watchers.get(handle)
        if wakes is not None and wake in wakes:
            wakes.remove(wake)
            if not wakes:
                del self._watchers[handle]

    def watch_accepts(self, port: int, wake: Wake) -> None:
        self._accept_watchers.setdefault(port, []).append(wake)

    def unwatch_accepts(self, port: int, wake: Wake) -> None:
        wakes = self._accept_watchers.get(port)
        if wakes is not None and wake in wakes:
            wakes.remove(wake)
            if not wakes:
                del self._accept_watchers[port]

    def changed(self, changed: list[ConnectionHandle], accept_ready: set[int]) -> None:
        """The driver's report: every watcher of these connections and ports re-checks."""
        watchers = self._watchers
        for handle in changed:
            for wake in list(watchers.get(handle, ())):
                wake()
        for port in accept_ready:
            for wake in list(self._accept_watchers.get(port, ())):
                wake()

    # ---- bind(2) ---------------------------------------------------------------------

    def bind_port(self, port: int, *, reuse: bool, version: int = 4) -> int:
        """Hold `port` (0: a free ephemeral one) for a socket, as bind(2) does.

        EADDRINUSE if a listener has it, or another bound socket unless both set
        SO_REUSEADDR, or a connection (TIME-WAIT too) unless this socket set SO_REUSEADDR
        (socket(7) SO_REUSEADDR)."""
        stack = self.stack
        if port == 0:
            port = stack.free_port({p for _, p in self._bound}, version=version)
        elif not 0 < port < 65536:
            raise OverflowError(f"bind(): port must be 0-65535, not {port}")
        else:
            others = self._bound.get((version, port), [])
            listening = stack.is_listening(port, version=version)
            if (
                listening
                or (others and not (reuse and all(others)))
                or (not reuse and stack.port_in_use(port))
            ):
                raise os_error(errno.EADDRINUSE, f"port {port} (IPv{version})")
        self._bound.setdefault((version, port), []).append(reuse)
        return port

    def release_port(self, port: int, *, reuse: bool, version: int = 4) -> None:
        holders = self._bound.get((version, port))
        if holders is not None and reuse in holders:
            holders.remove(reuse)
            if not holders:
                del self._bound[version, port]

    def connect(
        self, remote: Endpoint, now: float, *, config: TcpConfig | None,
        local_port: int | None = None,
    ) -> ConnectionHandle:
        """Active OPEN through the stack; an ephemeral port is never one a socket has
        bound but not yet used (Linux's connect skips a port bind(2) holds, in either
        family; the stack alone does not know those ports)."""
        bound = {port for _, port in self._bound}
        return self.stack.connect(
            remote, now, config=config, local_port=local_port, reserved=bound
        )
