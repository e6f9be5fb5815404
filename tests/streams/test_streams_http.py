"""A trio + h11 HTTP/1.1 server runs unchanged over stack.serve_tcp; a client fetches from it."""

from __future__ import annotations

import hashlib
import json
from functools import partial

import h11
import trio
import trio.testing
from streams_helpers import SERVER_ADDR, start_stacks

from userstack.apps.http import make_http_handler
from userstack.tcp.state import State


class HttpClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self, method: str, target: str, body: bytes = b""
    ) -> tuple[h11.Response, bytes]:
        headers = [("Host", SERVER_ADDR), ("Content-Length", str(len(body)))]
        for event in (
            h11.Request(method=method, target=target, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            await self.stream.send_all(self.conn.send(event) or b"")
        head, received = None, bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some())
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                received += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                self.conn.start_next_cycle()
                return head, bytes(received)


async def hello_server(stream: trio.abc.Stream) -> None:
    """The smallest h11 server: what any trio program would pass to trio.serve_tcp."""
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some())
            elif isinstance(event, h11.Request):
                body = b"hello from " + event.target
                for out in (
                    h11.Response(status_code=200, headers=[("Content-Length", str(len(body)))]),
                    h11.Data(data=body),
                    h11.EndOfMessage(),
                ):
                    await stream.send_all(conn.send(out) or b"")
            elif event is h11.PAUSED:
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return


async def test_minimal_h11_server_over_serve_tcp(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client_stack, server_stack, _, _ = await start_stacks(nursery)
        [listener] = await nursery.start(partial(server_stack.serve_tcp, hello_server, 8080))
        assert listener.local_address.port == 8080
        stream = await client_stack.open_tcp_stream(SERVER_ADDR, 8080)
        client = HttpClient(stream)
        for path in ("/a", "/b"):  # two requests on one kept-alive connection
            response, body = await client.request("GET", path)
            assert response.status_code == 200 and body == b"hello from " + path.encode()
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_app_http_server_over_the_stack(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client_stack, server_stack, _, _ = await start_stacks(
            nursery, loss=0.02, reorder=0.02, seed=3
        )
        await nursery.start(partial(server_stack.serve_tcp, make_http_handler(), 80))
        stream = await client_stack.open_tcp_stream(SERVER_ADDR, 80)
        client = HttpClient(stream)

        response, body = await client.request("GET", "/bytes/1000000")
        assert response.status_code == 200
        assert body == (bytes(range(256)) * 4000)[:1_000_000]

        upload = bytes(range(251)) * 4000
        response, body = await client.request("POST", "/upload", upload)
        assert json.loads(body) == {
            "length": len(upload),
            "sha256": hashlib.sha256(upload).hexdigest(),
        }

        response, body = await client.request("GET", "/")  # the page shows its own TCB
        assert response.status_code == 200
        assert State.ESTABLISHED.value.encode() in body
        assert str(stream.local_address.port).encode() in body
        await stream.aclose()
        nursery.cancel_scope.cancel()
