"""Header prediction (tcp/fast_path.py) on connections driven by real stacks.

Two stacks over a memory link pair move data both ways, sha256-checked, under a MockClock,
while every input to their connections is recorded (tests/call_log.py). Each connection's
inputs are then replayed with the fast path, without it and explained: after every input
the three must agree on the segments sent, the events, the timers and the whole state.
"""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing
from call_log import fast_path_agrees, recording
from streams_helpers import connect_pair, pattern, send_and_receive, start_stacks

from userstack.tcp.config import EcnMode, TcpConfig

ECN = TcpConfig(ecn=EcnMode.ON)


@pytest.mark.parametrize(
    ("faults", "config"),
    [
        ({"offload": False}, None),
        ({"offload": True, "whole": True}, None),
        ({"offload": False, "loss": 0.02, "duplicate": 0.01, "reorder": 0.02, "seed": 3}, None),
        ({"offload": False, "ce": 0.03, "loss": 0.01, "seed": 4}, ECN),
    ],
    ids=["plain", "offload", "lossy", "ecn-marked"],
)
async def test_fast_path_agrees_on_a_memory_link_run(
    autojump_clock: trio.testing.MockClock, faults: dict[str, object], config: TcpConfig | None
) -> None:
    up, down = pattern(300_000, 1), pattern(200_000, 2)
    with recording() as recordings:
        async with trio.open_nursery() as nursery:
            client, server, _, _ = await start_stacks(
                nursery, client_config=config, server_config=config, **faults
            )
            a, b = await connect_pair(client, server)
            with trio.fail_after(600):  # virtual seconds
                a_got, b_got = await send_and_receive(a, b, up, down)
            nursery.cancel_scope.cancel()
    assert hashlib.sha256(b_got).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(a_got).digest() == hashlib.sha256(down).digest()
    assert len(recordings) == 2  # the client's connection and the server's
    taken = [fast_path_agrees(rec) for rec in recordings]
    assert sum(acks + data for acks, data in taken) > 0
