"""The control socket: the streamed table over a real Unix socket, of any size."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import trio

from userstack.control import (
    ProcessInfo,
    Snapshot,
    decode,
    default_path,
    encode,
    fetch,
    fetch_table,
    serve_control,
)
from userstack.tcp.info import TcbInfo
from userstack.wire.addr import Endpoint

from .test_ss import ALL, ESTAB

PROCESS = ProcessInfo("userstack", 4242, 0, (5, 6))


@asynccontextmanager
async def serving(path: Path, table: list[TcbInfo], **kwargs: Any) -> AsyncIterator[None]:
    """A control socket at `path` answering with `table`, for the body of the block."""
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(serve_control, path, lambda: table, **kwargs))
        yield
        nursery.cancel_scope.cancel()


def many_rows(n: int) -> list[TcbInfo]:
    """`n` distinct ESTABLISHED rows, built without a stack."""
    return [replace(ESTAB, remote=Endpoint(IPv4Address(0x0A000000 + 2 + k // 60000),
                                           1024 + k % 60000)) for k in range(n)]


def test_encode_decode_round_trip() -> None:
    snapshot = Snapshot(ALL, PROCESS, {"malformed": 3})
    assert decode(b"".join(encode(snapshot))) == snapshot


def test_rows_come_in_chunks_between_a_header_and_an_end_line() -> None:
    chunks = list(encode(Snapshot(many_rows(2500))))
    assert len(chunks) == 1 + 3 + 1  # header, 1000 + 1000 + 500 rows, end
    assert chunks[-1] == b'{"end":2500}\n'


@pytest.mark.parametrize(
    "reply",
    [b"", b"{}", b"[1", b'{"userstack": 1, "connections": []}',
     b'{"userstack": 2, "fields": ["state"], "process": null, "counters": {}}\n["NOPE"]\n'
     b'{"end": 1}\n'],
)
def test_decode_rejects_garbage(reply: bytes) -> None:
    with pytest.raises(ValueError):
        decode(reply)


def test_a_reply_cut_short_is_an_error_not_a_shorter_table() -> None:
    lines = list(encode(Snapshot(many_rows(2500))))
    with pytest.raises(ValueError, match="cut short after 2000 rows"):
        decode(b"".join(lines[:-2]))  # the last chunk of rows and the end line are missing
    with pytest.raises(ValueError, match="announced"):
        decode(b"".join(lines[:-2] + lines[-1:]))  # the end line counts 500 rows more


def test_default_path_is_per_tun() -> None:
    assert default_path("us7").name == "us7.sock"


async def test_serve_and_fetch(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "us0.sock"
    table: list[TcbInfo] = list(ALL)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, lambda: table)
        assert await fetch_table(path) == ALL
        table.pop()
        assert await fetch_table(path) == ALL[:-1]
        async with await trio.open_unix_socket(str(path)) as stream:
            await stream.send_all(b"bogus\n")
            reply = await stream.receive_some(1000)
        with pytest.raises(ValueError, match="unknown request"):
            decode(reply)
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_the_reply_names_the_serving_process_and_its_counters(tmp_path: Path) -> None:
    path = tmp_path / "us0.sock"
    async with serving(path, ALL, counters=lambda: {"malformed": 7}):
        snapshot = await fetch(path)
    assert snapshot.counters == {"malformed": 7}
    assert snapshot.process is not None
    assert (snapshot.process.pid, snapshot.process.uid) == (os.getpid(), os.getuid())
    assert snapshot.process.fds == ()  # this process has no TUN open


async def test_a_table_of_100000_rows_arrives_whole(tmp_path: Path) -> None:
    path = tmp_path / "us0.sock"
    table = many_rows(100_000)
    async with serving(path, table):
        with trio.fail_after(60):
            got = await fetch_table(path)
    assert got == table


async def test_fetch_without_server_is_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        await fetch_table(tmp_path / "nobody.sock")


async def test_a_live_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "us0.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, lambda: ALL)
        with pytest.raises(OSError, match="another userstack"):
            await serve_control(path, lambda: [])
        assert await fetch_table(path) == ALL
        nursery.cancel_scope.cancel()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "us0.sock"
    stale = trio.socket.socket(trio.socket.AF_UNIX)
    await stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, lambda: ALL)
        assert await fetch_table(path) == ALL
        nursery.cancel_scope.cancel()
