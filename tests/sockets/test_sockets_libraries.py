"""Real trio libraries, unchanged, over two userstacks in memory inside trio_network().

None of them knows about userstack: each calls trio.open_tcp_stream, trio.serve_tcp or
trio.socket itself, and trio_network() points those at a stack. A kernel socket made
meanwhile would raise (the guard), and `kernel_sockets` counts any that were tried.
"""

from __future__ import annotations

import errno
import hashlib
import socket
import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import trio
import trio.testing
import trio_websocket
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from streams_helpers import SERVER_ADDR, pattern, start_stacks

BODY = pattern(200_000, 12)


class KernelSockets:
    """Counts kernel sockets the process tries to make (PEP 578 audit events), from
    the moment it is armed."""

    def __init__(self) -> None:
        self.armed = False
        self.made: list[tuple[Any, ...]] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.armed and event == "socket.__new__" and args[1] in (
            socket.AF_INET, socket.AF_INET6,
        ):
            self.made.append(args[1:])


_KERNEL = KernelSockets()


@pytest.fixture
def kernel_sockets() -> Iterator[KernelSockets]:
    _KERNEL.made.clear()
    _KERNEL.armed = True
    try:
        yield _KERNEL
    finally:
        _KERNEL.armed = False


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: GET /sha256 returns BODY; POST echoes the body's sha256."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = hashlib.sha256(body).hexdigest().encode() if scope["method"] == "POST" else BODY
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(reply)).encode())]})
    await send({"type": "http.response.body", "body": reply})


async def ws_echo(request: trio_websocket.WebSocketRequest) -> None:
    """A trio-websocket handler: every message back, until the client closes."""
    ws = await request.accept()
    while True:
        try:
            await ws.send_message(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            return


async def test_trio_websocket_url_client_and_server(
    autojump_clock: trio.testing.MockClock, kernel_sockets: KernelSockets
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        with server.trio_network():
            await nursery.start(partial(trio_websocket.serve_websocket, ws_echo, None, 8000,
                                        ssl_context=None))
        with client.trio_network():
            async with trio_websocket.open_websocket_url(f"ws://{SERVER_ADDR}:8000/echo") as ws:
                await ws.send_message("hello, RFC 6455")
                assert await ws.get_message() == "hello, RFC 6455"
                await ws.send_message(BODY)
                assert hashlib.sha256(await ws.get_message()).digest() == hashlib.sha256(
                    BODY).digest()
        nursery.cancel_scope.cancel()
    assert kernel_sockets.made == []


async def test_httpx_and_anyio_against_hypercorns_trio_server(
    autojump_clock: trio.testing.MockClock, kernel_sockets: KernelSockets
) -> None:
    config = HypercornConfig()
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)

    async def hypercorn_connection(stream: trio.abc.Stream) -> None:
        await TCPServer(wrapped, config, WorkerContext(None), {}, stream)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        client.hosts["server.test"] = server.address
        with server.trio_network():
            await nursery.start(trio.serve_tcp, hypercorn_connection, 8080)
        with client.trio_network():
            async with httpx.AsyncClient() as http:
                got = await http.get("http://server.test:8080/sha256")
                assert got.status_code == 200
                assert hashlib.sha256(got.content).digest() == hashlib.sha256(BODY).digest()
                posted = await http.post("http://server.test:8080/", content=BODY)
                assert posted.text == hashlib.sha256(BODY).hexdigest()
            stream = await anyio.connect_tcp("server.test", 8080)
            async with stream:
                await stream.send(b"GET / HTTP/1.1\r\nhost: server.test\r\n\r\n")
                assert (await stream.receive()).startswith(b"HTTP/1.1 200")
        nursery.cancel_scope.cancel()
    assert kernel_sockets.made == []


async def test_hypercorns_own_serve_runs_on_the_stack(
    autojump_clock: trio.testing.MockClock, kernel_sockets: KernelSockets
) -> None:
    """hypercorn.trio.serve(app, config), unchanged: it binds its listener with the
    stdlib, and inside trio_network() that listener is the stack's (sockets/stdlib.py);
    no kernel socket is made."""
    config = HypercornConfig()
    config.bind = [f"{SERVER_ADDR}:8080", "0.0.0.0:8081"]
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        with server.trio_network():
            binds = await nursery.start(partial(hypercorn_serve, app, config))
        assert binds == [f"http://{SERVER_ADDR}:8080", "http://0.0.0.0:8081"]
        with client.trio_network():
            async with httpx.AsyncClient() as http:
                for port in (8080, 8081):
                    got = await http.get(f"http://{SERVER_ADDR}:{port}/")
                    assert hashlib.sha256(got.content).digest() == hashlib.sha256(BODY).digest()
                posted = await http.post(f"http://{SERVER_ADDR}:8080/", content=BODY)
                assert posted.text == hashlib.sha256(BODY).hexdigest()
        nursery.cancel_scope.cancel()
    assert kernel_sockets.made == []


async def test_hypercorn_bound_to_an_address_the_stack_lacks_fails_as_bind_would(
    autojump_clock: trio.testing.MockClock, kernel_sockets: KernelSockets
) -> None:
    config = HypercornConfig()
    config.bind = ["10.9.9.9:8080"]  # not the stack's: EADDRNOTAVAIL, never the kernel's
    async with trio.open_nursery() as nursery:
        _, server, _, _ = await start_stacks(nursery)
        with server.trio_network(), pytest.raises(BaseException) as caught:
            await hypercorn_serve(app, config)  # type: ignore[arg-type]
        errors = caught.value.exceptions if isinstance(caught.value, BaseExceptionGroup) else [
            caught.value]
        [error] = [e for e in _leaves(errors) if isinstance(e, OSError)]
        assert error.errno == errno.EADDRNOTAVAIL and "userstack" in str(error)
        nursery.cancel_scope.cancel()
    assert kernel_sockets.made == []


def _leaves(errors: Any) -> Iterator[BaseException]:
    for error in errors:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error.exceptions)
        else:
            yield error
