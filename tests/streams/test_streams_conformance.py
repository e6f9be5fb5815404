"""TcpStream is a trio HalfCloseableStream: trio.testing's own checks, clean and faulty links.

Everything runs under MockClock(autojump_threshold=0) (pytest-trio's autojump_clock), so
retransmission, persist and TIME-WAIT timers cost no real time.
"""

from __future__ import annotations

import hashlib
import time

import pytest
import trio
import trio.testing
from streams_helpers import clog, connect_pair, pair_maker, pattern, send_and_receive, start_stacks

from userstack import TcpConfig

FAULTS = {"loss": 0.10, "duplicate": 0.05, "reorder": 0.10}

# Clogged: each side buffers 8 KiB to send and offers an 8 KiB window, and both directions
# are filled while nobody reads (trio also runs the checks on the flipped pair).
CLOGGABLE = TcpConfig(send_buffer=8192, recv_buffer=8192, keepalive=True, keepalive_idle=30.0)
# Under loss a lost RST is only noticed when the other side next sends; keep-alive makes an
# idle side send, so "peer aborted" is always detected (as with SO_KEEPALIVE on a kernel socket).
KEEPALIVE = TcpConfig(keepalive=True, keepalive_idle=30.0)


def _makers(nursery: trio.Nursery, **faults: object):  # type: ignore[no-untyped-def]
    plain = pair_maker(nursery, client_config=KEEPALIVE, server_config=KEEPALIVE, **faults)
    clogged_pair = pair_maker(nursery, client_config=CLOGGABLE, server_config=CLOGGABLE, **faults)

    async def clogged():  # type: ignore[no-untyped-def]
        client, server = await clogged_pair()
        await clog(client, server)
        await clog(server, client)
        return client, server

    return plain, clogged


async def test_check_half_closeable_stream(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        plain, clogged = _makers(nursery)
        await trio.testing.check_half_closeable_stream(plain, clogged)
        nursery.cancel_scope.cancel()


async def test_check_half_closeable_stream_with_faults(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        plain, clogged = _makers(nursery, seed=1, **FAULTS)
        await trio.testing.check_half_closeable_stream(plain, clogged)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("size", [5_000_000])
async def test_transfer_each_way_with_faults_is_byte_identical(
    autojump_clock: trio.testing.MockClock, size: int
) -> None:
    a_data, b_data = pattern(size, 1), pattern(size, 2)
    cpu = time.process_time()
    async with trio.open_nursery() as nursery:
        client, server, client_link, server_link = await start_stacks(nursery, seed=7, **FAULTS)
        a, b = await connect_pair(client, server)
        a_got, b_got = await send_and_receive(a, b, a_data, b_data)
        await a.aclose()
        await b.aclose()
        nursery.cancel_scope.cancel()
    cpu = time.process_time() - cpu
    assert hashlib.sha256(a_got).digest() == hashlib.sha256(b_data).digest()
    assert hashlib.sha256(b_got).digest() == hashlib.sha256(a_data).digest()
    faults = client_link.send_counters, server_link.send_counters
    assert all(f.dropped and f.duplicated and f.reordered for f in faults)
    virtual = trio.current_time()
    print(f"\n{size * 2 / 1e6:.0f} MB with faults: {cpu:.1f} s CPU, {virtual:.0f} s virtual")
    assert cpu < 120, f"{cpu:.1f} s of CPU for {size} bytes each way"
