"""A small HTTP/1.1 server on h11, built to exercise the stack with real clients.

Routes:
  GET  /          an HTML page showing this connection's own TCB (state, endpoints,
                  the RFC 9293 3.3.1 send and receive variables)
  GET  /bytes/N   N bytes (byte i is i % 256), generated as it goes, Content-Length N
  POST /upload    consumes the body as it arrives; answers {"length": n, "sha256": hex}

Keep-alive works as HTTP/1.1 says; a request h11 cannot parse gets 400 and the
connection is closed. Nothing ever holds a whole body in memory.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields
from enum import Enum
from typing import Protocol, runtime_checkable

import h11
import trio

from ..tcp.info import TcbInfo

CHUNK = 64 * 1024
SERVER = b"userstack"
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may sit between requests
MAX_BYTES = 1 << 40  # /bytes/N upper bound: a typo should not stream forever

_PATTERN = bytes(range(256)) * (CHUNK // 256)  # byte i of /bytes/N is i % 256


@runtime_checkable
class HasTcbInfo(Protocol):
    """A stream that can describe its own connection (the userstack TcpStream can)."""

    def info(self) -> TcbInfo: ...


InfoLookup = Callable[[trio.abc.Stream], TcbInfo | None]


def stream_info(stream: trio.abc.Stream) -> TcbInfo | None:
    """The default lookup: ask the stream itself, if it knows."""
    return stream.info() if isinstance(stream, HasTcbInfo) else None


class _Reply(Exception):
    """Raised inside a route to answer with an error status and close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def make_http_handler(
    info_lookup: InfoLookup = stream_info, *, idle_timeout: float = IDLE_TIMEOUT
) -> Callable[[trio.abc.Stream], Awaitable[None]]:
    """An HTTP handler; `info_lookup` finds the TcbInfo of the stream being served."""

    async def handler(stream: trio.abc.Stream) -> None:
        await _Session(stream, info_lookup, idle_timeout).run()

    return handler


class _Session:
    """One TCP connection: a loop of request/response cycles over one h11.Connection."""

    def __init__(self, stream: trio.abc.Stream, info_lookup: InfoLookup, idle: float) -> None:
        self.stream = stream
        self.info_lookup = info_lookup
        self.idle = idle
        self.conn = h11.Connection(h11.SERVER)

    async def run(self) -> None:
        async with self.stream:
            try:
                await self._serve()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            await self._close_gracefully()

    async def _serve(self) -> None:
        while True:
            try:
                with trio.move_on_after(self.idle) as idle:
                    event = await self._next_event()
                if idle.cancelled_caught or isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                await self._route(event)
            except h11.RemoteProtocolError as exc:
                await self._fail(exc.error_status_hint, f"bad request: {exc}")
                return
            except _Reply as reply:
                await self._fail(reply.status, reply.text)
                return
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()

    async def _next_event(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(CHUNK))
                continue
            return event

    async def _route(self, request: h11.Request) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        if path == "/" and method in ("GET", "HEAD"):
            await self._skip_body()
            await self._page(head=method == "HEAD")
        elif path.startswith("/bytes/") and method in ("GET", "HEAD"):
            await self._skip_body()
            await self._bytes(path.removeprefix("/bytes/"), head=method == "HEAD")
        elif path == "/upload" and method == "POST":
            await self._upload()
        elif path == "/" or path.startswith("/bytes/") or path == "/upload":
            raise _Reply(405, "method not allowed")
        else:
            raise _Reply(404, "not found")

    # --- routes ---

    async def _page(self, *, head: bool) -> None:
        body = render_page(self.info_lookup(self.stream)).encode()
        await self._respond(200, "text/html; charset=utf-8", len(body), [] if head else [body])

    async def _bytes(self, arg: str, *, head: bool) -> None:
        if not arg.isdigit() or int(arg) > MAX_BYTES:
            raise _Reply(400, f"/bytes/N wants 0 <= N <= {MAX_BYTES}")
        n = int(arg)
        await self._respond(200, "application/octet-stream", n, [] if head else pattern_chunks(n))

    async def _upload(self) -> None:
        if self.conn.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        digest = hashlib.sha256()
        length = 0
        async for data in self._body():
            digest.update(data)
            length += len(data)
        body = (json.dumps({"length": length, "sha256": digest.hexdigest()}) + "\n").encode()
        await self._respond(200, "application/json", len(body), [body])

    # --- plumbing ---

    async def _body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives, up to its EndOfMessage."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                return
            else:  # h11 raises for a body cut short; anything else is a protocol error
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)

    async def _skip_body(self) -> None:
        """Read and drop a body nobody asked for, so the next request starts clean."""
        async for _ in self._body():
            pass

    async def _respond(
        self,
        status: int,
        content_type: str,
        length: int,
        body: AsyncIterator[bytes] | list[bytes],
        *,
        close: bool = False,
    ) -> None:
        headers = [
            (b"Server", SERVER),
            (b"Content-Type", content_type.encode()),
            (b"Content-Length", str(length).encode()),
        ]
        # A body we did not read would be taken for the next request: close instead.
        if close or self.conn.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            headers.append((b"Connection", b"close"))
        await self._send(h11.Response(status_code=status, headers=headers))
        if isinstance(body, list):
            for chunk in body:
                await self._send(h11.Data(data=chunk))
        else:
            async for chunk in body:
                await self._send(h11.Data(data=chunk))
        await self._send(h11.EndOfMessage())

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            await self.stream.send_all(data)

    async def _fail(self, status: int, text: str) -> None:
        """Answer an error and close, if a response can still be started."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (text + "\n").encode()
        try:
            await self._respond(status, "text/plain; charset=utf-8", len(body), [body], close=True)
        except h11.LocalProtocolError:
            return

    async def _close_gracefully(self) -> None:
        """Send our FIN; the `async with` then closes."""
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            try:
                await self.stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return


async def pattern_chunks(n: int) -> AsyncIterator[bytes]:
    """n bytes of the /bytes pattern, one CHUNK at a time (never n bytes at once)."""
    while n > 0:
        chunk = _PATTERN[: min(n, CHUNK)]
        n -= len(chunk)
        yield chunk


def _value(v: object) -> str:
    if isinstance(v, Enum):
        return str(v.value)
    if isinstance(v, float):
        return f"{v:.3f}"
    return "-" if v is None else str(v)


def render_page(info: TcbInfo | None) -> str:
    """The status page: every TcbInfo field in a table, or a note if none is known."""
    if info is None:
        rows = '<tr><td colspan="2">this connection has no TCB to show</td></tr>'
        title = "userstack"
    else:
        rows = "\n".join(
            f"<tr><th>{f.name}</th><td>{html.escape(_value(getattr(info, f.name)))}</td></tr>"
            for f in fields(info)
        )
        title = html.escape(f"userstack: {info.local} <- {info.remote} {info.state.value}")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
        "<p>The TCB of the connection that carried this request (RFC 9293 3.3.1).</p>\n"
        f"<table>\n{rows}\n</table>\n</body></html>\n"
    )
