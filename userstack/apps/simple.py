"""The three classic test services: echo (RFC 862), discard (RFC 863), chargen (RFC 864).

Each is an async handler taking a connected `trio.abc.Stream`, so it runs over the
userstack's TcpStream, a kernel socket stream or `trio.testing.memory_stream_pair`
alike. When the stream is half-closeable the handlers honour half-close: echo sends
its FIN after the peer's, discard closes once the peer has finished sending.
"""

from __future__ import annotations

import trio

CHUNK = 64 * 1024


async def _send_eof(stream: trio.abc.Stream) -> None:
    """Half-close if the stream can (our FIN), otherwise nothing: the caller closes."""
    if isinstance(stream, trio.abc.HalfCloseableStream):
        await stream.send_eof()


async def echo(stream: trio.abc.Stream) -> None:
    """RFC 862: send back every byte received; end our side when the peer ends theirs."""
    async with stream:
        try:
            while data := await stream.receive_some(CHUNK):
                await stream.send_all(data)
            await _send_eof(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def discard(stream: trio.abc.Stream) -> None:
    """RFC 863: read and throw away everything until the peer's FIN."""
    async with stream:
        try:
            while await stream.receive_some(CHUNK):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


LINE_WIDTH = 72
_PRINTABLE = bytes(range(32, 127))  # the 95 printing ASCII characters, space first


def chargen_cycle() -> bytes:
    """One full period of the RFC 864 pattern: 95 lines of 72 characters plus CRLF.

    Line N is characters N .. N+71 (mod 95) of the printing ASCII ring, so the
    stream repeats every 95 lines (7030 bytes).
    """
    ring = _PRINTABLE * 2
    return b"".join(
        ring[n : n + LINE_WIDTH] + b"\r\n" for n in range(len(_PRINTABLE))
    )


_CYCLE = chargen_cycle()
_CHARGEN_BLOCK = _CYCLE * (CHUNK // len(_CYCLE))  # whole periods, so blocks join seamlessly


async def chargen(stream: trio.abc.Stream) -> None:
    """RFC 864: send the rotating pattern until the peer goes away; ignore what it sends."""
    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(_drain, stream)
        try:
            while True:
                await stream.send_all(_CHARGEN_BLOCK)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        nursery.cancel_scope.cancel()


async def _drain(stream: trio.abc.Stream) -> None:
    """Read and drop input (RFC 864: 'data received is thrown away')."""
    try:
        while await stream.receive_some(CHUNK):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
