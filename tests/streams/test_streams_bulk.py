"""Bulk transfer over the memory link: the 100 MB the brief asks the stack to carry."""

from __future__ import annotations

import hashlib
import time

import pytest
import trio
import trio.testing
from streams_helpers import connect_pair, start_stacks

CHUNK = bytes(range(256)) * 256  # 64 KiB


async def _one_way(total: int) -> tuple[float, float]:
    """Send `total` bytes client -> server; returns (CPU seconds, virtual seconds)."""
    cpu, virtual = time.process_time(), trio.current_time()
    sent, got = hashlib.sha256(), hashlib.sha256()
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)

        async def send() -> None:
            for _ in range(total // len(CHUNK)):
                sent.update(CHUNK)
                await a.send_all(CHUNK)
            await a.aclose()

        nursery.start_soon(send)
        received = 0
        while data := await b.receive_some():
            got.update(data)
            received += len(data)
        await b.aclose()
        nursery.cancel_scope.cancel()
    assert received == total and got.digest() == sent.digest()
    return time.process_time() - cpu, trio.current_time() - virtual


async def test_bulk_8mb(autojump_clock: trio.testing.MockClock) -> None:
    cpu, virtual = await _one_way(8 * 2**20)
    print(f"\n8 MiB over the memory link: {8 * 2**20 / cpu / 1e6:.1f} MB/s of CPU")
    assert virtual < 5.0  # no loss: no retransmission timeouts, no stalls


@pytest.mark.soak
async def test_bulk_100mb(autojump_clock: trio.testing.MockClock) -> None:
    cpu, _ = await _one_way(100 * 10**6 // len(CHUNK) * len(CHUNK))
    print(f"\n100 MB over the memory link: {cpu:.1f} s CPU, {100 / cpu:.1f} MB/s")
