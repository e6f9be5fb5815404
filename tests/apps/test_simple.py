"""echo, discard and chargen over in-memory streams (no stack needed)."""

from __future__ import annotations

import trio
import trio.testing

from userstack.apps.simple import chargen, chargen_cycle, discard, echo


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    out = bytearray()
    while data := await stream.receive_some(65536):
        out += data
    return bytes(out)


async def test_echo_returns_every_byte_then_half_closes() -> None:
    client, server = trio.testing.memory_stream_pair()
    payload = bytes(range(256)) * 1000
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, server)
        await client.send_all(payload)
        await client.send_eof()
        assert await read_all(client) == payload


async def test_echo_survives_peer_vanishing() -> None:
    client, server = trio.testing.memory_stream_pair()
    with trio.fail_after(10):  # the handler must end by itself, or this fails (not hangs)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, server)
            await client.send_all(b"hello")
            await client.aclose()


async def test_discard_reads_to_eof_and_closes() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(discard, server)
        await client.send_all(b"x" * 1_000_000)
        await client.send_eof()
        assert await read_all(client) == b""  # nothing back, then our EOF


def test_chargen_cycle_is_rfc864_pattern() -> None:
    cycle = chargen_cycle()
    lines = cycle.split(b"\r\n")[:-1]
    assert len(lines) == 95 and all(len(line) == 72 for line in lines)
    assert lines[0] == bytes(range(32, 104))  # characters 0..71 of the ring
    assert lines[1].startswith(b'!"#$') and lines[1].endswith(b"h")
    assert lines[94] == b"~" + bytes(range(32, 103))  # wraps around the 95-char ring


async def test_chargen_streams_the_pattern_until_peer_leaves() -> None:
    client, server = trio.testing.memory_stream_pair()
    cycle = chargen_cycle()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(chargen, server)
        await client.send_all(b"ignored input")
        got = bytearray()
        while len(got) < 3 * len(cycle) + 100:
            got += await client.receive_some(65536)
        await client.aclose()
    assert bytes(got[: 3 * len(cycle)]) == cycle * 3
