"""Seeded faults on any link: loss, duplication, reordering, corruption, delay and jitter.

This kernel has no netem, so bad networks are made here, above the link. Every decision comes from
`random.Random`, one generator per direction seeded from `seed`: given the seed and the order of the
packets in each direction, the same packets are dropped, duplicated, held back and corrupted every
run, however the two directions interleave. Time comes only from `trio.current_time()` and
`trio.sleep*`, so a `trio.testing.MockClock` drives delays without real waiting.

What each fault does to a packet, in this order:
- loss: the packet is gone (`dropped`);
- congestion (`ce`): what a router with a full queue does (RFC 3168 5): an ECN-capable
  packet (ECT(0) or ECT(1)) is marked Congestion Experienced (`marked`), any other dropped;
- corruption: one random bit flips (`corrupted`); the wire layer's checksums must reject it;
- duplication: the packet goes out twice (`duplicated`);
- delay + jitter: each copy is due `delay + uniform(0, jitter)` seconds later (jitter alone can
  reorder, as on a real path);
- reordering: the copy is held back until the next packet has gone past it, then released right
  behind that one (`reordered`); if no later packet comes within `reorder_hold` seconds it goes out
  in order after all, and is not counted.

Every packet offered is also told to `on_packet`, if given, with what the faults did to it,
so that the trace and the capture can show each drop, duplicate and corruption where it
happened (`userstack serve --trace --pcap` do, with `FaultCapture`: a learner sees the loss,
not only the retransmission that repaired it).

The receive path needs no task of its own: `receive_batch()` waits for the inner link and for the
next due packet at once. The send path with delay, jitter or reordering keeps packets in flight
after `send` has returned, so it needs a background task: give the link a nursery, or use
`open_faulty_link()`, which owns one. Closing the link drops whatever is still in flight, as
pulling a cable does. `memory_link_pair` uses the same engine (`FaultPath`) for each direction.

With offload, a super-segment (`OffloadedPacket`) is one packet to the faults: it is lost,
duplicated or held back whole. Corrupting one completes its checksum first, so the flipped
bit reaches the receiver as a plain packet that its checksum must reject.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

import trio

from userstack.link.base import Link, LinkBase
from userstack.wire.ipv4 import Ecn, ecn_of, with_ecn
from userstack.wire.ipv6 import ecn_of6, with_ecn6
from userstack.wire.offload import LinkPacket, OffloadedPacket, link_packet_bytes
from userstack.wire.pcapng import Fault, PcapngWriter, fault_comment

# Told of every packet offered, in order, with what the faults did to it, so a trace or a
# capture can show it: (the packet, the fault or None, now). A dropped packet is told once
# (DROPPED); a corrupted one as its corrupted bytes; a duplicated one twice, the second copy
# as DUPLICATED.
PacketReport = Callable[[LinkPacket, Fault | None, float], None]


@dataclass(frozen=True, slots=True)
class Faults:
    """What to do to the packets going one way: probabilities per packet, times in seconds."""

    loss: float = 0.0
    ce: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    reorder_hold: float = 0.05

    def __post_init__(self) -> None:
        for name in ("loss", "ce", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], not {value!r}")
        for name in ("delay", "jitter", "reorder_hold"):
            value = getattr(self, name)
            if not 0.0 <= value < math.inf:
                raise ValueError(f"{name} is a finite number of seconds >= 0, not {value!r}")

    @property
    def timed(self) -> bool:
        """Whether packets can stay in flight after they were offered."""
        return self.delay > 0 or self.jitter > 0 or self.reorder > 0


@dataclass(slots=True)
class FaultCounters:
    """What the faults did, one direction or both. `offered` counts packets that came in."""

    offered: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    marked: int = 0  # ECN-capable packets marked CE instead of dropped

    def __add__(self, other: FaultCounters) -> FaultCounters:
        return FaultCounters(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(FaultCounters))
        )


def _flip_bit(packet: LinkPacket, rng: random.Random) -> bytes:
    bit = rng.randrange(len(packet) * 8)
    corrupted = bytearray(bytes(packet))  # an OffloadedPacket completes its checksum
    corrupted[bit >> 3] ^= 1 << (bit & 7)
    return bytes(corrupted)


def _ecn_capable(packet: LinkPacket) -> bool:
    """An IPv4 or IPv6 packet whose sender set ECT(0) or ECT(1)."""
    if type(packet) is OffloadedPacket:
        packet = packet.header
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        return ecn_of6(packet) in (Ecn.ECT_0, Ecn.ECT_1)
    if len(packet) < 20 or packet[0] >> 4 != 4 or len(packet) < (packet[0] & 0xF) * 4:
        return False
    return ecn_of(packet) in (Ecn.ECT_0, Ecn.ECT_1)


def _mark_ce(packet: LinkPacket) -> LinkPacket:
    """CE on any packet a link carries; an offloaded one keeps its payload apart, a
    vouched-for one its mark (the TCP checksum does not cover the ECN bits)."""
    if type(packet) is OffloadedPacket:
        header = packet.header
        mark = with_ecn6 if header[0] >> 4 == 6 else with_ecn
        return replace(packet, header=mark(header, Ecn.CE))
    mark = with_ecn6 if packet[0] >> 4 == 6 else with_ecn
    return type(packet)(mark(packet, Ecn.CE))


class FaultPath:
    """The faults of one direction, without I/O: packets in with `offer`, out with `take_due`.

    Packets wait in a heap ordered by (due time, arrival number), so equal due times keep their
    order. At most one packet is held back for reordering at a time.
    """

    def __init__(
        self, faults: Faults, rng: random.Random, report: PacketReport | None = None
    ) -> None:
        self.faults = faults
        self.counters = FaultCounters()
        self.report = report
        self._rng = rng
        self._heap: list[tuple[float, int, LinkPacket]] = []
        self._arrival = itertools.count()
        self._held: tuple[float, LinkPacket] | None = None  # (give up waiting at, packet)

    def offer(self, packet: LinkPacket, now: float) -> None:
        faults, rng, counters = self.faults, self._rng, self.counters
        counters.offered += 1
        if faults.loss and rng.random() < faults.loss:
            counters.dropped += 1
            if self.report:
                self.report(packet, Fault.DROPPED, now)
            return
        if faults.ce and rng.random() < faults.ce:
            if not _ecn_capable(packet):
                counters.dropped += 1
                if self.report:
                    self.report(packet, Fault.DROPPED, now)
                return
            packet = _mark_ce(packet)
            counters.marked += 1
        fault = None
        if faults.corrupt and packet and rng.random() < faults.corrupt:
            packet = _flip_bit(packet, rng)
            counters.corrupted += 1
            fault = Fault.CORRUPTED
        copies = 1
        if faults.duplicate and rng.random() < faults.duplicate:
            copies = 2
            counters.duplicated += 1
        if self.report:
            self.report(packet, fault, now)
            if copies == 2:
                self.report(packet, Fault.DUPLICATED, now)
        for _ in range(copies):
            due = now + faults.delay
            if faults.jitter:
                due += rng.uniform(0.0, faults.jitter)
            if faults.reorder and self._held is None and rng.random() < faults.reorder:
                self._held = (due + faults.reorder_hold, packet)
                continue
            self._push(due, packet)
            if self._held is not None:
                # A later packet has gone past the held one: release it right behind.
                self._push(due, self._held[1])
                self._held = None
                counters.reordered += 1

    def take_due(self, now: float) -> list[LinkPacket]:
        """Every packet due at `now`, in the order it leaves."""
        if self._held is not None and self._held[0] <= now:
            self._push(*self._held)
            self._held = None
        heap, ready = self._heap, []
        while heap and heap[0][0] <= now:
            ready.append(heapq.heappop(heap)[2])
        return ready

    def __len__(self) -> int:
        """Packets in flight."""
        return len(self._heap) + (self._held is not None)

    def next_due(self) -> float | None:
        """When the next packet leaves, or None when nothing is in flight."""
        candidates = []
        if self._heap:
            candidates.append(self._heap[0][0])
        if self._held is not None:
            candidates.append(self._held[0])
        return min(candidates, default=None)

    def clear(self) -> None:
        self._heap.clear()
        self._held = None

    def _push(self, due: float, packet: LinkPacket) -> None:
        heapq.heappush(self._heap, (due, next(self._arrival), packet))


async def receive_due(
    link: LinkBase, path: FaultPath, wait: Callable[[float | None], Awaitable[None]]
) -> list[bytes]:
    """A link's `_receive_batch` over a FaultPath: every packet due now, in order.

    Until one is due it calls `wait(next_due)` (None: nothing in flight), which returns
    when something may have changed (that due time passed, or a packet was offered) or
    raises EndOfChannel when nothing more will come. Closing the link meanwhile raises
    ClosedResourceError. A call that did not wait still checkpoints.
    """
    waited = False
    while True:
        if link.closed:
            raise trio.ClosedResourceError("link is closed")
        ready = path.take_due(trio.current_time())
        if ready:
            if not waited:
                await trio.lowlevel.checkpoint()
            return ready
        await wait(path.next_due())
        waited = True


def rng_for(seed: int | str | None, label: str) -> random.Random:
    """One generator per direction, so the directions' decisions do not depend on each other."""
    return random.Random() if seed is None else random.Random(f"{seed}/{label}")


def _reporter(
    on_packet: Callable[[str, LinkPacket, Fault | None, float], None] | None, direction: str
) -> PacketReport | None:
    if on_packet is None:
        return None
    return lambda packet, fault, now: on_packet(direction, packet, fault, now)


class FaultyLink(LinkBase):
    """Wraps any link and applies the same `Faults` to what it sends and what it receives.

    Timed faults on the send path need `nursery` (see the module docstring); the receive path
    never does: there a packet's delay counts from when the wrapper read it from the inner link.
    With a nursery, close the link (`async with link:`), or that nursery waits for it forever;
    an error from the inner link's send surfaces there too.
    Counters: `send_counters`, `receive_counters`, and `counters` for both together.
    """

    def __init__(
        self,
        inner: Link,
        *,
        seed: int | str | None = None,
        nursery: trio.Nursery | None = None,
        on_packet: Callable[[str, LinkPacket, Fault | None, float], None] | None = None,
        **options: float,
    ) -> None:
        """`options` are the fields of `Faults`, by name: `FaultyLink(tun, loss=0.01)`.
        `on_packet("send" or "receive", packet, fault or None, now)` hears of every packet
        offered, and of what the faults did to it (see `PacketReport`)."""
        super().__init__()
        faults = Faults(**options)
        self.inner = inner
        self.offload = inner.offload
        self._tx = FaultPath(faults, rng_for(seed, "send"), _reporter(on_packet, "send"))
        self._rx = FaultPath(faults, rng_for(seed, "receive"), _reporter(on_packet, "receive"))
        self._inner_ended = False
        self._closing = trio.Event()
        self._pump_scope = trio.CancelScope()
        self._pump_waiting = trio.lowlevel.ParkingLot()
        self._pumped = faults.timed
        if self._pumped:
            if nursery is None:
                raise ValueError(
                    "delay, jitter and reorder on the send path keep packets in flight after send()"
                    " returns: pass nursery= or use open_faulty_link()"
                )
            nursery.start_soon(self._pump_send)

    @property
    def send_counters(self) -> FaultCounters:
        return self._tx.counters

    @property
    def receive_counters(self) -> FaultCounters:
        return self._rx.counters

    @property
    def counters(self) -> FaultCounters:
        return self._tx.counters + self._rx.counters

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        self._check_open()
        path, now = self._tx, trio.current_time()
        for packet in packets:
            path.offer(packet, now)
        if self._pumped:
            self._pump_waiting.unpark_all()
            await trio.lowlevel.checkpoint()
            return
        ready = path.take_due(now)
        if ready:
            await self.inner.send_batch(ready)
        else:
            await trio.lowlevel.checkpoint()

    async def _pump_send(self) -> None:
        """The send path's packets in flight: hand each to the inner link when it is due."""
        path = self._tx
        with self._pump_scope:
            while True:
                ready = path.take_due(trio.current_time())
                if ready:
                    await self.inner.send_batch(ready)
                    continue
                deadline = path.next_due()
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await self._pump_waiting.park()

    async def _receive_batch(self) -> list[bytes]:
        return await receive_due(self, self._rx, self._wait_for_inner)

    async def _wait_for_inner(self, deadline: float | None) -> None:
        """Until `deadline`: offer what the inner link delivers to the receive path; once
        the inner link has ended, deliver what is still in flight, then end too."""
        if self._inner_ended:
            if deadline is None:
                raise trio.EndOfChannel
            with trio.move_on_at(deadline):
                await self._closing.wait()
            return
        with trio.move_on_at(math.inf if deadline is None else deadline):
            try:
                batch = await self.inner.receive_batch()
            except trio.EndOfChannel:
                self._inner_ended = True
                return
            path, now = self._rx, trio.current_time()
            for packet in batch:
                path.offer(packet, now)

    async def _aclose(self) -> None:
        self._closing.set()
        self._pump_scope.cancel()
        self._tx.clear()
        self._rx.clear()
        await self.inner.aclose()



class FaultCapture:
    """A pcapng capture made by the fault link itself (its `on_packet`): every packet once,
    in the order offered, as it left or was lost, with a comment for what the faults did
    ("userstack fault link: dropped (send)"; userstack/wire/pcap.py reads them back). The
    capture point is the fault link's entrance: a delay or a reordering does not show."""

    def __init__(self, writer: PcapngWriter, clock: Callable[[], float] = time.time) -> None:
        """`writer`'s one interface is the fault link's."""
        self._writer = writer
        self._clock = clock  # wall clock by default, as for PcapTap

    def packet(
        self, direction: str, packet: LinkPacket, fault: Fault | None, now: float
    ) -> None:
        comment = None if fault is None else fault_comment(fault, direction)
        self._writer.write(link_packet_bytes(packet), self._clock(), comment)


@asynccontextmanager
async def open_faulty_link(inner: Link, **options: Any) -> AsyncIterator[FaultyLink]:
    """`async with open_faulty_link(tun, delay=0.05, loss=0.01, seed=1) as link:` -- a FaultyLink
    (same keywords) with its own nursery for the send path; closes the link on the way out."""
    async with trio.open_nursery() as nursery:
        link = FaultyLink(inner, nursery=nursery, **options)
        try:
            yield link
        finally:
            await link.aclose()
