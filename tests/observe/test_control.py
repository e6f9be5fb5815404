"""The control socket: a JSON round trip of the table over a real Unix socket."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from userstack.control import decode, default_path, encode, fetch_table, serve_control
from userstack.tcp.info import TcbInfo

from .test_ss import ALL


def test_encode_decode_round_trip() -> None:
    assert decode(encode(ALL)) == ALL


@pytest.mark.parametrize("line", [b"", b"{}", b'{"connections": [{"state": "NOPE"}]}', b"[1"])
def test_decode_rejects_garbage(line: bytes) -> None:
    with pytest.raises(ValueError):
        decode(line)


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
