"""Two stacks over a memory pair with offload: whole, cut in software, and through faults.

Both directions at once, sha256-checked, under a MockClock. Every TCP packet crosses as an
`OffloadedPacket`; the far end gets it vouched for (`whole=True`, as two kernel sockets on
one host) or as complete, verified packets (`whole=False`).
"""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing
from streams_helpers import connect_pair, pattern, send_and_receive, start_stacks

from userstack.wire.offload import TSO

SIZE = 1_000_000


@pytest.mark.parametrize(
    "faults",
    [
        {"whole": True},
        {"whole": False},
        {"whole": True, "loss": 0.02, "duplicate": 0.01, "reorder": 0.02, "seed": 7},
        {"whole": True, "corrupt": 0.02, "seed": 8},
    ],
    ids=["whole", "cut", "lossy", "corrupt"],
)
async def test_both_ways_with_offload(
    autojump_clock: trio.testing.MockClock, faults: dict[str, object]
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, client_link, _ = await start_stacks(nursery, offload=True, **faults)
        assert client_link.offload == TSO
        a, b = await connect_pair(client, server)
        up, down = pattern(SIZE, 1), pattern(SIZE, 2)
        with trio.fail_after(600):  # virtual seconds
            a_got, b_got = await send_and_receive(a, b, up, down)
        assert hashlib.sha256(b_got).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(a_got).digest() == hashlib.sha256(down).digest()
        if faults.get("corrupt"):
            # Every corrupted packet reached a stack unvouched and failed its checksum.
            corrupted = client_link.send_counters.corrupted + client_link.receive_counters.corrupted
            malformed = client.counters.malformed + server.counters.malformed
            assert corrupted > 0 and malformed == corrupted
        else:
            assert client.counters.malformed == server.counters.malformed == 0
        nursery.cancel_scope.cancel()
