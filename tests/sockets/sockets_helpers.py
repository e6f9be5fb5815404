"""Pairs of connected UserSockets over two stacks in memory."""

from __future__ import annotations

import trio
from streams_helpers import SERVER_ADDR

from userstack import UserStack
from userstack.sockets import UserSocket

PORT = 7


async def listening(server: UserStack, port: int = PORT, **options: int) -> UserSocket:
    sock = server.socket()
    for name, value in options.items():
        sock.setsockopt(*_option(name), value)
    await sock.bind(("", port))
    sock.listen(8)
    return sock


async def socket_pair(
    client: UserStack, server: UserStack, port: int = PORT
) -> tuple[UserSocket, UserSocket]:
    """(client socket, accepted server socket), connected."""
    listener = await listening(server, port)
    sock = client.socket()
    await sock.connect((SERVER_ADDR, port))
    accepted, _ = await listener.accept()
    listener.close()
    return sock, accepted


async def settle() -> None:
    """Let every packet in flight arrive (virtual time)."""
    await trio.testing.wait_all_tasks_blocked()
    await trio.sleep(0.01)
    await trio.testing.wait_all_tasks_blocked()


def _option(name: str) -> tuple[int, int]:
    import socket

    level = socket.IPPROTO_TCP if name.startswith("TCP_") else socket.SOL_SOCKET
    return level, getattr(socket, name)
