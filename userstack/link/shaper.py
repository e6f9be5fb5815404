"""A bottleneck: a link of limited rate behind a bounded tail-drop queue (netem's `rate` and
`limit`, or a router's FIFO in front of a slower link).

Loss from `FaultyLink` is random: it falls the same whatever the sender does, so congestion
control has nothing to find. A bottleneck makes loss the sender's own doing. Packets leave
one after another at `bits_per_second`; while they wait they sit in a queue of at most
`limit` packets (the one on the wire included), and a packet that arrives to a full queue is
dropped (tail drop). A sender below the rate sees no queue and no loss; a sender above it
sees the RTT grow as the queue fills (what HyStart++ watches for), then losses: the
steady state of a real path.

`Bottleneck` is the arithmetic, without I/O: `admit(size, now)` answers when the packet's
last bit leaves, or None for a drop, so a simulation of the sans-I/O core can use it
directly. `ShapedLink` puts one on the send path of any link, with a task that hands each
packet to the inner link when it has left; time is trio's, so a MockClock runs it
instantly. Wrap the end whose sending you want limited: `ShapedLink(left, ...)` over a
memory pair limits left-to-right only, as netem shapes egress only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from userstack.link.base import Link, LinkBase


@dataclass(slots=True)
class ShaperCounters:
    """`offered` packets came in; `dropped` found the queue full; `max_queue` is the most
    packets that were ever queued at once."""

    offered: int = 0
    dropped: int = 0
    max_queue: int = 0


class Bottleneck:
    """A FIFO of `limit` packets in front of a link of `bits_per_second`, sans-I/O."""

    def __init__(self, bits_per_second: float, limit: int) -> None:
        if not 0 < bits_per_second < math.inf:
            raise ValueError(f"bits_per_second must be positive and finite, not {bits_per_second}")
        if limit < 1:
            raise ValueError(f"limit is a number of packets, at least 1, not {limit}")
        self.bits_per_second = bits_per_second
        self.limit = limit
        self.counters = ShaperCounters()
        self._departures: deque[float] = deque()  # when each queued packet's last bit leaves
        self._busy_until = -math.inf

    def admit(self, size: int, now: float) -> float | None:
        """A packet of `size` bytes arrives at `now` (never before the last call's `now`):
        the time it has left the link, or None when the queue is full and it is dropped."""
        departures = self._departures
        while departures and departures[0] <= now:
            departures.popleft()
        counters = self.counters
        counters.offered += 1
        if len(departures) >= self.limit:
            counters.dropped += 1
            return None
        departure = max(now, self._busy_until) + size * 8 / self.bits_per_second
        self._busy_until = departure
        departures.append(departure)
        counters.max_queue = max(counters.max_queue, len(departures))
        return departure

    @property
    def queued(self) -> int:
        """Packets in the queue after the last `admit` (the one on the wire included): what
        an AQM that marks instead of dropping compares with its threshold (pathsim)."""
        return len(self._departures)


class ShapedLink(LinkBase):
    """Any link, with a `Bottleneck` on what it sends; receiving is untouched.

    The packets in the queue are still in flight after `send` returns, so the link needs
    `nursery` for the task that passes them on (or use `open_shaped_link()`); close it
    (`async with link:`), or that nursery waits for it forever. Closing drops the queue.
    """

    def __init__(
        self, inner: Link, *, bits_per_second: float, limit: int, nursery: trio.Nursery
    ) -> None:
        super().__init__()
        self.inner = inner
        self.bottleneck = Bottleneck(bits_per_second, limit)
        self._queue: deque[tuple[float, bytes]] = deque()
        self._waiting = trio.lowlevel.ParkingLot()
        self._pump_scope = trio.CancelScope()
        nursery.start_soon(self._pump)

    @property
    def counters(self) -> ShaperCounters:
        return self.bottleneck.counters

    async def send_batch(self, packets: Sequence[bytes]) -> None:
        self._check_open()
        now, admit = trio.current_time(), self.bottleneck.admit
        for packet in packets:
            departure = admit(len(packet), now)
            if departure is not None:
                self._queue.append((departure, packet))
        self._waiting.unpark_all()
        await trio.lowlevel.checkpoint()

    async def _pump(self) -> None:
        """Hand each packet to the inner link once it has left the bottleneck."""
        queue = self._queue
        with self._pump_scope:
            while True:
                now = trio.current_time()
                ready = []
                while queue and queue[0][0] <= now:
                    ready.append(queue.popleft()[1])
                if ready:
                    await self.inner.send_batch(ready)
                    continue
                with trio.move_on_at(queue[0][0] if queue else math.inf):
                    await self._waiting.park()

    async def _receive_batch(self) -> list[bytes]:
        return await self.inner.receive_batch()

    async def _aclose(self) -> None:
        self._pump_scope.cancel()
        self._queue.clear()
        await self.inner.aclose()


@asynccontextmanager
async def open_shaped_link(
    inner: Link, *, bits_per_second: float, limit: int
) -> AsyncIterator[ShapedLink]:
    """`async with open_shaped_link(left, bits_per_second=10e6, limit=50) as link:` -- a
    ShapedLink with its own nursery; closes the link on the way out."""
    async with trio.open_nursery() as nursery:
        link = ShapedLink(inner, bits_per_second=bits_per_second, limit=limit, nursery=nursery)
        try:
            yield link
        finally:
            await link.aclose()
