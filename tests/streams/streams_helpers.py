"""Two userstacks joined by a memory link pair, kept running by a test's nursery."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from userstack import TcpConfig, TcpStream, UserStack, memory_link_pair, open_stack
from userstack.link.base import Link
from userstack.link.memory import MemoryLink

CLIENT_ADDR = "10.0.0.1"
SERVER_ADDR = "10.0.0.2"

StreamPair = tuple[TcpStream, TcpStream]


async def _hold_stack(
    link: Link,
    address: str,
    config: TcpConfig | None,
    observer: Any,
    *,
    task_status: trio.TaskStatus[UserStack],
) -> None:
    key = address.encode()
    async with open_stack(link, address, config=config, observer=observer, isn_key=key) as stack:
        task_status.started(stack)
        await trio.sleep_forever()


async def start_stacks(
    nursery: trio.Nursery,
    *,
    client_config: TcpConfig | None = None,
    server_config: TcpConfig | None = None,
    observer: Any = None,
    **faults: Any,
) -> tuple[UserStack, UserStack, MemoryLink, MemoryLink]:
    """A client stack (10.0.0.1) and a server stack (10.0.0.2) over memory_link_pair(**faults)."""
    client_link, server_link = memory_link_pair(**faults)
    client = await nursery.start(_hold_stack, client_link, CLIENT_ADDR, client_config, observer)
    server = await nursery.start(_hold_stack, server_link, SERVER_ADDR, server_config, None)
    return client, server, client_link, server_link


async def connect_pair(client: UserStack, server: UserStack, port: int = 80) -> StreamPair:
    """One connection: (client's stream, server's accepted stream)."""
    [listener] = await server.open_tcp_listeners(port)
    stream = await client.open_tcp_stream(SERVER_ADDR, port)
    accepted = await listener.accept()
    await listener.aclose()
    return stream, accepted


def pair_maker(
    nursery: trio.Nursery, **kwargs: Any
) -> Callable[[], Awaitable[StreamPair]]:
    """A trio.testing stream_maker: each call, a fresh pair of stacks and one connection."""

    async def maker() -> StreamPair:
        client, server, _, _ = await start_stacks(nursery, **kwargs)
        return await connect_pair(client, server)

    return maker


async def clog(stream: TcpStream, peer: TcpStream) -> None:
    """Send until neither our send buffer nor the peer's window has room left (nobody reads).

    Clogged means settled: the peer holds a full buffer, and every ACK for it has arrived
    (else an ACK still in flight, or a retransmission after a loss, frees send space later).
    """
    while True:
        with trio.move_on_after(5.0):
            await stream.send_all(b"c" * 1_000_000)
        ours, theirs = stream.info(), peer.info()
        if stream._conn.send_space == 0 and ours.snd_wnd == 0 and ours.snd_una == theirs.rcv_nxt:
            return


def pattern(n: int, seed: int) -> bytes:
    """n pseudo-random bytes (reproducible, cheap to make)."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


async def send_and_receive(
    a: TcpStream, b: TcpStream, a_data: bytes, b_data: bytes
) -> tuple[bytes, bytes]:
    """Both directions at once; each side half-closes when done. Returns (a got, b got)."""
    got: dict[str, bytearray] = {"a": bytearray(), "b": bytearray()}

    async def send(stream: TcpStream, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(data), 100_000):
            await stream.send_all(view[i : i + 100_000])
        await stream.send_eof()

    async def receive(stream: TcpStream, key: str) -> None:
        while chunk := await stream.receive_some():
            got[key] += chunk

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, a, a_data)
        nursery.start_soon(send, b, b_data)
        nursery.start_soon(receive, a, "a")
        nursery.start_soon(receive, b, "b")
    return bytes(got["a"]), bytes(got["b"])
