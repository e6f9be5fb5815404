"""The trio API in both families: open_stack with two addresses, open_tcp_stream to an IPv6
address, one listener per family (as trio.open_tcp_listeners), a lossy IPv6 transfer."""

from __future__ import annotations

import hashlib
import random
from ipaddress import IPv4Address, IPv6Address

import pytest
import trio
import trio.testing

from userstack import TcpStream, memory_link_pair, open_stack
from userstack.tcp.state import State

CLIENT6, SERVER6 = IPv6Address("fd00::1"), IPv6Address("fd00::2")


async def test_dual_stack_serves_both_families() -> None:
    left, right = memory_link_pair()
    async with (
        open_stack(left, "10.0.0.1", address6=CLIENT6, isn_key=b"c") as client,
        open_stack(right, "10.0.0.2", address6=SERVER6, isn_key=b"s") as server,
    ):
        listeners = await server.open_tcp_listeners(0)
        assert [ln.local_address.ip for ln in listeners] == [IPv4Address("10.0.0.2"), SERVER6]
        assert len({ln.port for ln in listeners}) == 1
        port = listeners[0].port
        for host, listener in zip(("10.0.0.2", "fd00::2"), listeners, strict=True):
            stream = await client.open_tcp_stream(host, port)
            accepted = await listener.accept()
            assert accepted.remote_address == stream.local_address
            await stream.send_all(b"over IPv" + str(listener.version).encode())
            assert await accepted.receive_some() == b"over IPv" + str(listener.version).encode()
            await stream.aclose()
            await accepted.aclose()
        assert server.address6 == SERVER6
        for listener in listeners:
            await listener.aclose()


async def test_listeners_by_host() -> None:
    left, _ = memory_link_pair()
    async with open_stack(left, "10.0.0.2", address6=SERVER6) as stack:
        [v6] = await stack.open_tcp_listeners(80, host="::")
        [v4] = await stack.open_tcp_listeners(80, host="10.0.0.2")
        assert (v6.version, v4.version) == (6, 4)
        with pytest.raises(OSError, match="not this stack's address"):
            await stack.open_tcp_listeners(81, host="fd00::9")
        with pytest.raises(OSError, match="already listening"):
            await stack.open_tcp_listeners(80)
        await v6.aclose()
        await v4.aclose()


async def test_an_ipv6_only_stack() -> None:
    left, right = memory_link_pair()
    async with (
        open_stack(left, CLIENT6, isn_key=b"c") as client,
        open_stack(right, "fd00::2", isn_key=b"s") as server,
    ):
        [listener] = await server.open_tcp_listeners(7)
        stream = await client.open_tcp_stream("fd00::2", 7)
        accepted = await listener.accept()
        # 1500 - 60 less the 12 bytes of timestamps (RFC 7323) every segment carries
        assert stream.info().mss == 1428 and accepted.local_address.ip == SERVER6
        with pytest.raises(OSError, match="no IPv4 address"):
            await client.open_tcp_stream("10.0.0.2", 7)
        await stream.aclose()
        await accepted.aclose()
        await listener.aclose()


async def test_lossy_ipv6_transfer_arrives_whole(autojump_clock: trio.testing.MockClock) -> None:
    data = random.Random(6).randbytes(300_000)
    left, right = memory_link_pair(loss=0.03, duplicate=0.01, reorder=0.03, delay=0.01, seed=6)
    async with (
        open_stack(left, CLIENT6, isn_key=b"c") as client,
        open_stack(right, SERVER6, isn_key=b"s") as server,
        trio.open_nursery() as nursery,
    ):
        received: list[bytes] = []

        async def sink(stream: TcpStream) -> None:
            async with stream:
                received.extend([chunk async for chunk in stream])

        await nursery.start(server.serve_tcp, sink, 80)
        stream = await client.open_tcp_stream(SERVER6, 80)
        await stream.send_all(data)
        await stream.send_eof()
        with trio.fail_after(600):
            while stream.info().state is not State.TIME_WAIT:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert hashlib.sha256(b"".join(received)).digest() == hashlib.sha256(data).digest()
