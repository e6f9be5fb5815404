"""The HTTP app over in-memory streams, driven by an h11 client."""

from __future__ import annotations

import hashlib
import json
from ipaddress import IPv4Address

import h11
import pytest
import trio
import trio.testing

from userstack.apps.http import make_http_handler, render_page
from userstack.tcp.info import TcbInfo, TimerKind
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint

INFO = TcbInfo(
    state=State.ESTABLISHED,
    local=Endpoint(IPv4Address("10.0.0.2"), 80),
    remote=Endpoint(IPv4Address("10.0.0.1"), 43210),
    recv_q=0, send_q=0, timer=TimerKind.DELAYED_ACK, timer_left=0.2, retransmits=0,
    iss=1000, irs=5000, snd_una=1001, snd_nxt=1001, snd_wnd=64240,
    rcv_nxt=5078, rcv_wnd=262144, mss=1460, cwnd=14600, ssthresh=1 << 30, srtt=None, rto=1.0,
)


class Client:
    """A bare HTTP/1.1 client over one stream, to see exactly what the server sends."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def send(self, *events: h11.Event) -> None:
        for event in events:
            await self.stream.send_all(self.conn.send(event) or b"")

    async def response(self) -> tuple[h11.Response, bytes]:
        head: h11.Response | None = None
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, bytes(body)

    async def get(self, target: str) -> tuple[h11.Response, bytes]:
        await self.send(
            h11.Request(method="GET", target=target, headers=[("Host", "x")]), h11.EndOfMessage()
        )
        response = await self.response()
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return response


async def serve(nursery: trio.Nursery, **kwargs: object) -> Client:
    client, server = trio.testing.memory_stream_pair()
    handler = make_http_handler(lambda _s: INFO, **kwargs)  # type: ignore[arg-type]
    nursery.start_soon(handler, server)
    return Client(client)


def header(response: h11.Response, name: bytes) -> bytes | None:
    return dict(response.headers).get(name.lower())


async def test_page_shows_the_connection_tcb() -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        response, body = await client.get("/")
        await client.stream.aclose()
    assert response.status_code == 200
    page = body.decode()
    assert "ESTABLISHED" in page and "10.0.0.1:43210" in page
    assert "<th>snd_una</th><td>1001</td>" in page and "<th>rcv_nxt</th><td>5078</td>" in page
    assert "delack" in page


def test_page_without_info() -> None:
    assert "no TCB" in render_page(None)


async def test_bytes_streams_the_pattern_with_content_length() -> None:
    n = 300_001
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        response, body = await client.get(f"/bytes/{n}")
        await client.stream.aclose()
    assert response.status_code == 200 and header(response, b"content-length") == str(n).encode()
    assert body == (bytes(range(256)) * (n // 256 + 1))[:n]


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        for n in (0, 10, 70000):
            response, body = await client.get(f"/bytes/{n}")
            assert response.status_code == 200 and len(body) == n
        assert header(response, b"connection") is None
        await client.stream.aclose()


@pytest.mark.parametrize("chunked", [False, True])
async def test_upload_reports_length_and_sha256(chunked: bool) -> None:
    parts = [bytes([i]) * 50_000 for i in range(7)]
    data = b"".join(parts)
    framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(data)))
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        await client.send(
            h11.Request(method="POST", target="/upload",
                        headers=[("Host", "x"), framing, ("Expect", "100-continue")]))
        informational = client.conn.next_event()
        while informational is h11.NEED_DATA:
            client.conn.receive_data(await client.stream.receive_some(65536))
            informational = client.conn.next_event()
        assert isinstance(informational, h11.InformationalResponse)
        assert informational.status_code == 100
        for part in parts:
            await client.send(h11.Data(data=part))
        await client.send(h11.EndOfMessage())
        response, body = await client.response()
        await client.stream.aclose()
    assert response.status_code == 200
    assert json.loads(body) == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        await client.stream.send_all(
            b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = bytearray()
        while data := await client.stream.receive_some(65536):
            raw += data
        await client.stream.aclose()
    first, second = raw.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and first.endswith(b"\r\n\r\n\x00\x01\x02")
    assert second.startswith(b"200") and second.endswith(b"\r\n\r\n\x00\x01\x02\x03\x04")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),  # head too large
        (b"GET /bytes/banana HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"DELETE /upload HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    ],
)
async def test_bad_requests_get_an_error_and_the_connection_closes(
    request_bytes: bytes, status: int
) -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        await client.stream.send_all(request_bytes)
        response, _ = await client.response()
        assert response.status_code == status
        assert header(response, b"connection") == b"close"
        assert client.conn.next_event() is h11.NEED_DATA
        assert await client.stream.receive_some(100) == b""  # the server's FIN
        await client.stream.aclose()


async def test_head_gets_headers_only() -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery)
        await client.send(
            h11.Request(method="HEAD", target="/bytes/1000", headers=[("Host", "x")]),
            h11.EndOfMessage(),
        )
        response, body = await client.response()
        await client.stream.aclose()
    assert header(response, b"content-length") == b"1000" and body == b""


async def test_idle_keep_alive_connection_is_closed(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        client = await serve(nursery, idle_timeout=5.0)
        await client.get("/bytes/1")
        start = trio.current_time()
        assert await client.stream.receive_some(100) == b""
        assert trio.current_time() - start == pytest.approx(5.0)
        await client.stream.aclose()


async def test_client_vanishing_mid_response_ends_the_handler() -> None:
    client, server = trio.testing.lockstep_stream_pair()
    with trio.fail_after(10):  # the handler must end by itself, or this fails (not hangs)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(make_http_handler(lambda _s: None), server)
            await client.send_all(b"GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            await client.receive_some(1000)
            await client.aclose()
