"""Two links joined back to back in memory: two stacks talk without a kernel.

Each direction is a bounded trio memory channel. When it is full the packet is dropped and counted
(`queue_drops` on the sender), as a NIC's transmit queue does. That is the point of the bound: with
back-pressure instead, two drivers that both block sending into full queues while neither reads
would deadlock, and a real network never pushes back like that. The default capacity is generous
enough that no test which keeps reading ever hits it.

Faults (the `memory_link_pair` keywords) are a `FaultyLink` on each end's receive path, so each
direction gets them once, and no background task is needed: the receiver waits out the delays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import trio

from userstack.link.base import Link, LinkBase
from userstack.link.faults import Faults, FaultyLink

DEFAULT_CAPACITY = 1024
_MAX_BATCH = 256


class MemoryLink(LinkBase):
    """One end of a memory pair; make them with `memory_link_pair`."""

    def __init__(
        self, tx: trio.MemorySendChannel[bytes], rx: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        super().__init__()
        self._tx = tx
        self._rx = rx
        self.queue_drops = 0

    async def send_batch(self, packets: Sequence[bytes]) -> None:
        self._check_open()
        tx = self._tx
        for packet in packets:
            try:
                tx.send_nowait(packet)
            except trio.WouldBlock:
                self.queue_drops += 1
        await trio.lowlevel.checkpoint()

    async def _receive_batch(self) -> list[bytes]:
        rx = self._rx
        batch = [await rx.receive()]
        while len(batch) < _MAX_BATCH:
            try:
                batch.append(rx.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    async def _aclose(self) -> None:
        await self._tx.aclose()
        await self._rx.aclose()


def memory_link_pair(
    *,
    loss: float = 0.0,
    duplicate: float = 0.0,
    reorder: float = 0.0,
    corrupt: float = 0.0,
    delay: float = 0.0,
    jitter: float = 0.0,
    seed: int | str | None = None,
    capacity: int = DEFAULT_CAPACITY,
) -> tuple[Link, Link]:
    """Two joined links; the faults apply to each direction independently, seeded from `seed`."""
    a_to_b_tx, a_to_b_rx = trio.open_memory_channel[bytes](capacity)
    b_to_a_tx, b_to_a_rx = trio.open_memory_channel[bytes](capacity)
    a = MemoryLink(a_to_b_tx, b_to_a_rx)
    b = MemoryLink(b_to_a_tx, a_to_b_rx)
    faults = Faults(loss, duplicate, reorder, corrupt, delay, jitter)
    if not faults.active:
        return a, b
    return (
        FaultyLink(a, seed=_derive(seed, "a"), directions="receive", **asdict(faults)),
        FaultyLink(b, seed=_derive(seed, "b"), directions="receive", **asdict(faults)),
    )


def _derive(seed: int | str | None, end: str) -> str | None:
    return None if seed is None else f"{seed}/{end}"
