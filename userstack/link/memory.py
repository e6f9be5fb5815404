"""Two links joined back to back in memory: two stacks talk without a kernel.

Each direction is a `FaultPath` (userstack/link/faults.py): the packets in flight, each with the
time it is due at the far end. With no faults every packet is due the moment it is sent; with
faults the same seeded engine that `FaultyLink` uses decides, at send time, what is lost,
duplicated, corrupted, held back or delayed. The receiver waits for the next due packet, so no
background task is needed and a MockClock runs any delay instantly.

The queue is bounded: a packet sent while `capacity` packets are in flight is dropped and counted
(`queue_drops` on the sender), as a NIC's transmit queue does. That is the point of the bound:
with back-pressure instead, two drivers that both block sending into full queues while neither
reads would deadlock, and a real network never pushes back like that. The default is generous
enough that a test which keeps reading never hits it.

`offload=True` gives both ends the capability of a TUN with TSO (`TSO`): the stacks send
`OffloadedPacket`s, which the faults treat as one packet each, and the far end receives
each super-segment whole, as a `SuperSegment` whose checksum is vouched for (as two kernel
sockets on one host do), or, with `whole=False`, cut into MSS-sized packets with complete
checksums (the kernel's GSO towards a peer that takes no super-segments). Either way every
super-segment path of the stack runs without root.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import trio

from userstack.link.base import LinkBase
from userstack.link.faults import FaultCounters, FaultPath, Faults, receive_due, rng_for
from userstack.wire.offload import NO_OFFLOAD, TSO, LinkPacket, OffloadCapability, delivered

DEFAULT_CAPACITY = 4096


class _Direction:
    """One direction of a pair: the packets in flight, and the receivers waiting for them."""

    def __init__(self, path: FaultPath, capacity: int, whole: bool) -> None:
        self.path = path
        self.capacity = capacity
        self.whole = whole  # super-segments arrive whole, not cut (see the module docstring)
        self.waiting = trio.lowlevel.ParkingLot()
        self.sender_closed = False
        self.receiver_closed = False


class MemoryLink(LinkBase):
    """One end of a memory pair; make them with `memory_link_pair`."""

    def __init__(
        self, outgoing: _Direction, incoming: _Direction, offload: OffloadCapability
    ) -> None:
        super().__init__()
        self._out = outgoing
        self._in = incoming
        self.offload = offload
        self.queue_drops = 0

    @property
    def send_counters(self) -> FaultCounters:
        """What the faults did to the packets this end sent."""
        return self._out.path.counters

    @property
    def receive_counters(self) -> FaultCounters:
        """What the faults did to the packets sent to this end."""
        return self._in.path.counters

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        self._check_open()
        out = self._out
        if out.receiver_closed:
            raise trio.BrokenResourceError("the other end of the memory link is closed")
        path, now = out.path, trio.current_time()
        for packet in packets:
            if len(path) >= out.capacity:
                self.queue_drops += 1
            else:
                path.offer(packet, now)
        out.waiting.unpark_all()
        await trio.lowlevel.checkpoint()

    async def _receive_batch(self) -> list[bytes]:
        batch = await receive_due(self, self._in.path, self._wait_for_sender)
        if self.offload is NO_OFFLOAD:
            return batch
        return delivered(batch, whole=self._in.whole)

    async def _wait_for_sender(self, deadline: float | None) -> None:
        """Until `deadline`, or until the sender offers more or goes away."""
        incoming = self._in
        if deadline is None and incoming.sender_closed:
            raise trio.EndOfChannel
        with trio.move_on_at(math.inf if deadline is None else deadline):
            await incoming.waiting.park()

    async def _aclose(self) -> None:
        self._out.sender_closed = True
        self._out.waiting.unpark_all()  # the peer sees EndOfChannel once it has the rest
        self._in.receiver_closed = True
        self._in.path.clear()
        self._in.waiting.unpark_all()  # our own blocked receivers see ClosedResourceError
        await trio.lowlevel.checkpoint()


def memory_link_pair(
    *,
    seed: int | str | None = None,
    capacity: int = DEFAULT_CAPACITY,
    offload: bool = False,
    whole: bool = True,
    **options: float,
) -> tuple[MemoryLink, MemoryLink]:
    """Two joined links. `options` are the fields of `Faults`, by name (`loss=0.05,
    delay=0.02`); they apply to each direction independently, seeded from `seed`.
    `offload` and `whole`: see the module docstring."""
    faults = Faults(**options)
    capability = TSO if offload else NO_OFFLOAD
    a_to_b = _Direction(FaultPath(faults, rng_for(seed, "a->b")), capacity, whole)
    b_to_a = _Direction(FaultPath(faults, rng_for(seed, "b->a")), capacity, whole)
    return MemoryLink(a_to_b, b_to_a, capability), MemoryLink(b_to_a, a_to_b, capability)

