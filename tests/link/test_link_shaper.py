"""The bottleneck: its arithmetic alone, then ShapedLink's throughput and tail drops in
virtual time, then TCP through it (data checked by sha256)."""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing

from userstack import open_stack
from userstack.link.memory import memory_link_pair
from userstack.link.shaper import Bottleneck, ShapedLink, open_shaped_link

MBIT = 1_000_000


def test_packets_leave_one_after_another_at_the_rate() -> None:
    b = Bottleneck(8 * MBIT, limit=3)  # a 1000-byte packet takes 1 ms
    assert [b.admit(1000, 0.0) for _ in range(3)] == pytest.approx([0.001, 0.002, 0.003])
    assert b.admit(1000, 0.0) is None  # three queued: the fourth is dropped (tail drop)
    assert b.admit(1000, 0.0015) == pytest.approx(0.004)  # the first has left: room again
    assert b.admit(500, 0.0100) == pytest.approx(0.0105)  # an idle link starts at once
    c = b.counters
    assert (c.offered, c.dropped, c.max_queue) == (6, 1, 3)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bits_per_second"):
        Bottleneck(0, 10)
    with pytest.raises(ValueError, match="limit"):
        Bottleneck(MBIT, 0)


async def test_throughput_matches_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    left, right = memory_link_pair()
    packets = [i.to_bytes(4, "big") * 312 + b"ab" for i in range(1000)]  # 1250 bytes each
    async with open_shaped_link(left, bits_per_second=10 * MBIT, limit=2000) as shaped:
        start = trio.current_time()
        for chunk in range(0, 1000, 50):
            await shaped.send_batch(packets[chunk : chunk + 50])
        received: list[bytes] = []
        while len(received) < 1000:
            received += await right.receive_batch()
        elapsed = trio.current_time() - start
    assert received == packets  # in order, none lost below the limit
    # 1000 * 1250 bytes * 8 at 10 Mbit/s = 1.0 s, to the microsecond in virtual time
    assert elapsed == pytest.approx(1.0, abs=1e-6)
    assert shaped.counters.dropped == 0


async def test_a_full_queue_drops_and_counts(autojump_clock: trio.testing.MockClock) -> None:
    left, right = memory_link_pair()
    async with open_shaped_link(left, bits_per_second=MBIT, limit=50) as shaped:
        await shaped.send_batch([bytes([i]) * 100 for i in range(200)])
        received: list[bytes] = []
        with trio.move_on_after(10):
            while True:
                received += await right.receive_batch()
    assert [p[0] for p in received] == list(range(50))  # the first 50 got in, in order
    assert (shaped.counters.offered, shaped.counters.dropped) == (200, 150)
    assert shaped.counters.max_queue == 50


async def test_closing_drops_the_queue_and_closes_the_inner_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = memory_link_pair()
    async with trio.open_nursery() as nursery:
        shaped = ShapedLink(left, bits_per_second=MBIT, limit=10, nursery=nursery)
        await shaped.send_batch([b"x" * 1000] * 5)
        await shaped.aclose()
    assert left.closed
    with pytest.raises(trio.EndOfChannel):
        await right.receive_batch()  # nothing of the queue ever arrived


async def test_tcp_through_a_bottleneck_finds_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """4 MB through 20 Mbit/s with a 30-packet queue: the queue overflows (slow start
    overshoots), TCP recovers, every byte arrives, and the transfer takes no less than
    the link allows and not much more."""
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    left, right = memory_link_pair(delay=0.005)
    result: list[bytes] = []
    done = trio.Event()
    async with (
        open_shaped_link(left, bits_per_second=20 * MBIT, limit=30) as shaped,
        open_stack(shaped, "10.0.0.1", isn_key=b"a") as client,
        open_stack(right, "10.0.0.2", isn_key=b"b") as server,
        trio.open_nursery() as nursery,
    ):
        [listener] = await server.open_tcp_listeners(80)

        async def accept_one() -> None:
            digest = hashlib.sha256()
            async for chunk in await listener.accept():
                digest.update(chunk)
            result.append(digest.digest())
            done.set()

        nursery.start_soon(accept_one)
        stream = await client.open_tcp_stream("10.0.0.2", 80)
        start = trio.current_time()
        await stream.send_all(data)
        await stream.send_eof()
        await done.wait()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert result == [hashlib.sha256(data).digest()]
    wire_time = len(data) * 8 / (20 * MBIT)  # 1.68 s of payload alone
    assert wire_time < elapsed < 1.5 * wire_time, elapsed  # (1.75 s when written)
    assert shaped.counters.dropped > 0  # the window really did hit the queue's limit
