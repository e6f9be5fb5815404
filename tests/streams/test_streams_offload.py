"""Two stacks over a memory pair with offload: whole, cut in software, and through faults.

Both directions at once, sha256-checked, under a MockClock. Every TCP packet crosses as an
`OffloadedPacket`; the far end gets it vouched for (`whole=True`, as two kernel sockets on
one host) or as complete, verified packets (`whole=False`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
import trio
import trio.testing
from streams_helpers import connect_pair, pattern, send_and_receive, start_stacks

from userstack import TcpStream, memory_link_pair, open_stack
from userstack.link.base import Link, LinkBase
from userstack.link.memory import MemoryLink
from userstack.observe.hooks import Direction
from userstack.wire.offload import TSO, LinkPacket, OffloadedPacket

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


class SuperSegments:
    """An Observer that keeps the length of every super-segment the stack sent."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.largest_plain = 0
        self.ipv6 = True  # every super-segment was IPv6

    def packet(self, direction: Direction, packet: LinkPacket, now: float) -> None:
        if direction is not Direction.OUT:
            return
        if type(packet) is OffloadedPacket and packet.gso_size:
            self.lengths.append(len(packet))
            self.ipv6 = self.ipv6 and packet.ipv6
        else:
            self.largest_plain = max(self.largest_plain, len(packet))

    def state_changed(self, *args: object) -> None:
        pass


class DropSuperSegment(LinkBase):
    """Drops the `nth` super-segment longer than `least` bytes sent through it."""

    def __init__(self, inner: MemoryLink, nth: int, least: int) -> None:
        super().__init__()
        self.inner, self.offload, self.left, self.least = inner, inner.offload, nth, least
        self.dropped: int | None = None

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        keep = []
        for packet in packets:
            if type(packet) is OffloadedPacket and len(packet) > self.least and self.left:
                self.left -= 1
                if self.left == 0:
                    self.dropped = len(packet)
                    continue
            keep.append(packet)
        await self.inner.send_batch(keep)

    async def _receive_batch(self) -> list[bytes]:
        return await self.inner.receive_batch()

    async def _aclose(self) -> None:
        await self.inner.aclose()


async def _bulk(
    client_link: Link, server_link: Link, observer: SuperSegments, size: int = 4_000_000,
    *, addresses: tuple[str, str] = ("10.0.0.1", "10.0.0.2"),
) -> tuple[TcpStream, TcpStream]:
    """`size` bytes client -> server through two stacks, sha256-checked."""
    data = pattern(size, 3)
    async with (
        open_stack(client_link, addresses[0], observer=observer, isn_key=b"c") as client,
        open_stack(server_link, addresses[1], isn_key=b"s") as server,
    ):
        [listener] = await server.open_tcp_listeners(80)
        a = await client.open_tcp_stream(addresses[1], 80)
        b = await listener.accept()
        await listener.aclose()
        with trio.fail_after(600):
            _, got = await send_and_receive(a, b, data, b"")
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        return a, b


async def test_the_sender_emits_super_segments_where_the_link_segments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    observer = SuperSegments()
    await _bulk(*memory_link_pair(offload=True), observer)
    assert observer.lengths and max(observer.lengths) > 60_000
    assert max(observer.lengths) <= 65_535 and observer.largest_plain <= 1500


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "cut"])
async def test_ipv6_super_segments(autojump_clock: trio.testing.MockClock, whole: bool) -> None:
    """TSO6: an IPv6 connection sends super-segments too (gso_type TCPV6), taken whole by
    the far stack or cut as the kernel's GSO cuts them."""
    observer = SuperSegments()
    client_end, server_end = memory_link_pair(offload=True, whole=whole)
    await _bulk(client_end, server_end, observer, 2_000_000, addresses=("fd00::1", "fd00::2"))
    assert observer.lengths and max(observer.lengths) > 60_000
    assert observer.ipv6 and observer.largest_plain <= 1500


async def test_a_link_that_cannot_segment_never_gets_a_super_segment(
    autojump_clock: trio.testing.MockClock,
) -> None:
    observer = SuperSegments()
    await _bulk(*memory_link_pair(), observer, size=1_000_000)
    assert observer.lengths == [] and observer.largest_plain <= 1500


@pytest.mark.parametrize(
    ("whole", "least"),
    # Cut in pieces for the receiver, its ACKs come every two pieces and each frees room for
    # a super-segment of two: there the loss is of one such segment.
    [(True, 60_000), (False, 2000)],
    ids=["whole-64KB", "cut"],
)
async def test_a_lost_super_segment_is_recovered(
    autojump_clock: trio.testing.MockClock, whole: bool, least: int
) -> None:
    observer = SuperSegments()
    client_end, server_end = memory_link_pair(offload=True, whole=whole)
    lossy = DropSuperSegment(client_end, nth=3, least=least)
    a, _ = await _bulk(lossy, server_end, observer)
    assert lossy.dropped is not None and lossy.dropped > least  # lost, and still sha256-equal
    assert a.info().snd_una == a.info().snd_nxt
