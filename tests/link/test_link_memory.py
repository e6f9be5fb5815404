"""memory_link_pair: order, batching, closing, the drop-on-full queue, delay on a MockClock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from userstack.link.base import Link
from userstack.link.memory import memory_link_pair

PACKETS = [bytes([0x45, i]) * 10 for i in range(50)]


async def test_delivers_in_order_both_ways() -> None:
    a, b = memory_link_pair()
    assert isinstance(a, Link) and isinstance(b, Link)
    for packet in PACKETS:
        await a.send(packet)
    await b.send_batch(PACKETS[::-1])
    assert [await b.receive() for _ in PACKETS] == PACKETS
    assert await a.receive_batch() == PACKETS[::-1]


async def test_mixing_receive_and_receive_batch_keeps_order() -> None:
    a, b = memory_link_pair()
    await a.send_batch(PACKETS[:10])
    assert await b.receive() == PACKETS[0]  # the rest of that batch now waits in the link
    await a.send_batch(PACKETS[10:])
    assert await b.receive_batch() == PACKETS[1:10]
    assert await b.receive_batch() == PACKETS[10:]


async def test_receive_batch_waits_for_the_first_packet() -> None:
    a, b = memory_link_pair()
    async with trio.open_nursery() as nursery:
        got: list[list[bytes]] = []

        async def receiver() -> None:
            got.append(await b.receive_batch())

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await a.send(PACKETS[0])
    assert got == [[PACKETS[0]]]


async def test_closed_link_raises_closed_resource_error() -> None:
    a, _ = memory_link_pair()
    await a.aclose()
    await a.aclose()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        await a.receive()
    with pytest.raises(trio.ClosedResourceError):
        await a.receive_batch()
    with pytest.raises(trio.ClosedResourceError):
        await a.send(PACKETS[0])


async def test_closing_wakes_a_blocked_receiver() -> None:
    a, _ = memory_link_pair()
    with pytest.RaisesGroup(trio.ClosedResourceError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.receive)
            await trio.testing.wait_all_tasks_blocked()
            await a.aclose()


async def test_peer_closing_ends_the_channel_after_what_is_in_flight() -> None:
    a, b = memory_link_pair()
    await a.send_batch(PACKETS[:3])
    await a.aclose()
    assert await b.receive_batch() == PACKETS[:3]
    with pytest.raises(trio.EndOfChannel):
        await b.receive()
    with pytest.raises(trio.BrokenResourceError):
        await b.send(PACKETS[0])


async def test_full_queue_drops_and_counts_like_a_nic() -> None:
    a, b = memory_link_pair(capacity=8)
    await a.send_batch(PACKETS[:20])
    assert a.queue_drops == 12
    assert await b.receive_batch() == PACKETS[:8]


async def test_delay_under_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    a, b = memory_link_pair(delay=0.25)
    start = trio.current_time()
    await a.send(PACKETS[0])
    await trio.sleep(0.1)
    await a.send(PACKETS[1])
    assert await b.receive() == PACKETS[0]
    assert trio.current_time() - start == pytest.approx(0.25)
    assert await b.receive() == PACKETS[1]
    assert trio.current_time() - start == pytest.approx(0.35)


async def test_faults_apply_once_per_direction() -> None:
    a, b = memory_link_pair(loss=0.5, seed=7)
    await a.send_batch(PACKETS * 4)
    await b.send_batch(PACKETS * 4)
    got_b = await b.receive_batch()
    got_a = await a.receive_batch()
    assert b.receive_counters is a.send_counters  # one FaultPath per direction
    assert a.send_counters.offered == b.send_counters.offered == 200
    assert len(got_b) == 200 - a.send_counters.dropped
    assert len(got_a) == 200 - b.send_counters.dropped
    assert 60 < a.send_counters.dropped < 140 and 60 < b.send_counters.dropped < 140
    assert a.send_counters.dropped != b.send_counters.dropped  # independent generators


async def test_long_delay_costs_no_real_time(autojump_clock: trio.testing.MockClock) -> None:
    a, b = memory_link_pair(delay=3600.0)
    await a.send(PACKETS[0])
    assert await b.receive() == PACKETS[0]
    assert trio.current_time() == pytest.approx(3600.0)
