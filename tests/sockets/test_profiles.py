"""TcpConfig.rfc() and TcpConfig.linux(): the table of docs/profiles.md, and IW10 at work."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from streams_helpers import connect_pair, start_stacks
from trio.testing import MockClock

from userstack import TcpConfig
from userstack.tcp.state import State

PROFILES = Path(__file__).parents[2] / "docs" / "profiles.md"


def test_the_default_is_the_rfc_profile() -> None:
    assert TcpConfig() == TcpConfig.rfc()


def test_every_difference_is_a_row_of_docs_profiles() -> None:
    rfc, linux = TcpConfig.rfc(), TcpConfig.linux()
    fields = rfc.__dataclass_fields__
    differ = {name for name in fields if getattr(rfc, name) != getattr(linux, name)}
    assert differ == {
        "initial_window", "rto_min", "rto_max", "delayed_ack", "quickack", "tlp_timing",
        "syn_retries", "msl",
    }
    rows = PROFILES.read_text()
    for name in differ:
        assert re.search(rf"^\| `[^|]*\b{name}\b", rows, re.MULTILINE), name


def test_initial_window_is_checked() -> None:
    with pytest.raises(ValueError, match="RFC 6928"):
        TcpConfig(initial_window=11)


async def test_linux_profile_starts_with_ten_segments(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery, client_config=TcpConfig.linux())
        a, _ = await connect_pair(client, server)
        rfc_client, rfc_server, _, _ = await start_stacks(nursery)
        b, _ = await connect_pair(rfc_client, rfc_server)
        assert a.info().cwnd == 10 * a.info().mss  # RFC 6928
        assert b.info().cwnd == 3 * b.info().mss  # RFC 5681 3.1 at MSS 1460
        nursery.cancel_scope.cancel()


async def settle(done: Callable[[], bool]) -> None:
    """Until `done()`, checked whenever every task is blocked, in 1 ms steps of virtual
    time (so a wait is measured to the millisecond, and one of 0 is 0)."""
    await trio.testing.wait_all_tasks_blocked()
    while not done():
        await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()


async def ack_waits(server_config: TcpConfig, sends: int) -> list[float]:
    """How long each of `sends` one-byte sends, back to back, waits for the server's ACK
    (virtual time; the server reads nothing and sends nothing back)."""
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery, server_config=server_config)
        stream, _ = await connect_pair(client, server)
        stream.set_nodelay(True)
        waits = []
        for _ in range(sends):
            start = trio.current_time()
            await stream.send_all(b"x")
            await settle(lambda: not stream.info().send_q)
            waits.append(round(trio.current_time() - start, 3))
        nursery.cancel_scope.cancel()
    return waits


async def test_linux_profile_quick_acks_the_first_sixteen_segments(
    autojump_clock: MockClock,
) -> None:
    """Linux's quick-ACK mode: each of the first 16 segments is ACKed at once, then the
    delayed ACK (40 ms) takes over; the RFC profile delays from the first (200 ms)."""
    assert await ack_waits(TcpConfig.linux(), 18) == [0.0] * 16 + [0.04, 0.04]
    assert await ack_waits(TcpConfig.rfc(), 2) == [0.2, 0.2]


async def fin_ack_wait(server_config: TcpConfig) -> float:
    """How long the client's FIN, sent before any data, waits for the server's ACK."""
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery, server_config=server_config)
        stream, _ = await connect_pair(client, server)  # the server never closes
        start = trio.current_time()
        await stream.aclose()
        await settle(lambda: [row.state for row in client.connections()] == [State.FIN_WAIT_2])
        nursery.cancel_scope.cancel()
    return round(trio.current_time() - start, 3)


async def test_linux_profile_acks_a_fin_before_any_data_at_once(
    autojump_clock: MockClock,
) -> None:
    """Linux's delayed-ACK timeout is 0 until the first data; the RFC profile delays."""
    assert await fin_ack_wait(TcpConfig.linux()) == 0.0
    assert await fin_ack_wait(TcpConfig.rfc()) == 0.2
