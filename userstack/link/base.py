"""The Link: whatever moves whole IPv4 packets between the stack and its peer.

A link carries `bytes`, one IPv4 packet each, and knows nothing about what is inside. The driver
pumps packets between a link and the sans-I/O stack; tests swap the TUN for a memory pair, and
wrappers (faults, pcap) stack on top of any link because they all speak this one protocol.

Batches are the primitive. A TUN wake-up yields everything the kernel has queued, and one
`receive_batch()` per wake-up instead of one `receive()` per packet is what keeps the Python
overhead per packet small. `LinkBase` derives the single-packet calls from the batch ones, so a
link writes each direction once.

Closing, as in trio's channels:
- after `aclose()`, `send`/`receive` (and the batch forms) raise `trio.ClosedResourceError`; a task
  blocked in `receive` when its own link is closed gets `trio.ClosedResourceError` too;
- when the other end goes away (the peer of a memory pair closed its link), `receive` raises
  `trio.EndOfChannel` once everything already in flight has been delivered, and `send` raises
  `trio.BrokenResourceError`.
A TUN has no peer to go away: it only ends by being closed.

Offload. `link.offload` (an `OffloadCapability`, userstack/wire/offload.py) says what else the
link takes besides plain `bytes`: with `checksum`, an `OffloadedPacket` whose TCP checksum it
completes; with `segmentation` too, one whose payload it cuts into `gso_size` pieces (a
super-segment of up to `max_packet` bytes). The stack reads it and never sends a link what it
cannot take: a link that cannot segment never receives a super-segment, one without offload
only `bytes`. On the way in, a link may hand up `Vouched` bytes, whose TCP checksum it
vouches for (the kernel checked it, or it was never computed because it never left this
machine); the stack skips the checksum for those alone, and they may be longer than one MSS.
Wrappers pass the capability of the link they wrap through.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import trio

from userstack.wire.offload import NO_OFFLOAD, LinkPacket, OffloadCapability


@runtime_checkable
class Link(Protocol):
    """Moves whole IPv4 packets; see the module docstring for the closing rules."""

    offload: OffloadCapability  # what the link takes besides plain bytes

    async def send(self, packet: LinkPacket) -> None:
        """Hand one packet to the link."""
        ...

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        """Hand several packets to the link, in order, in one go."""
        ...

    async def receive(self) -> bytes:
        """Wait for the next packet."""
        ...

    async def receive_batch(self) -> list[bytes]:
        """Wait for at least one packet, then return every packet that is ready now, in order."""
        ...

    async def aclose(self) -> None:
        """Close the link (idempotent); the receive side then raises ClosedResourceError."""
        ...


class LinkBase(trio.abc.AsyncResource):
    """The single-packet calls and the closing rules, written once for every link.

    A subclass implements `send_batch`, `_receive_batch` (wait for >= 1 packet, return what is
    ready) and `_aclose`. `receive()` takes packets one at a time out of a whole batch, so the
    rest of that batch waits here in `_pending`; `receive_batch()` hands those out first, which
    keeps the order right when a caller mixes the two calls.
    """

    offload: OffloadCapability = NO_OFFLOAD

    def __init__(self) -> None:
        self._pending: deque[bytes] = deque()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, packet: LinkPacket) -> None:
        await self.send_batch((packet,))

    async def receive(self) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("link is closed")
        if not self._pending:
            self._pending.extend(await self._receive_batch())
            return self._pending.popleft()
        await trio.lowlevel.checkpoint()
        return self._pending.popleft()

    async def receive_batch(self) -> list[bytes]:
        if self._closed:
            raise trio.ClosedResourceError("link is closed")
        if not self._pending:
            return await self._receive_batch()
        await trio.lowlevel.checkpoint()
        batch = list(self._pending)
        self._pending.clear()
        return batch

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._pending.clear()
        await self._aclose()

    def _check_open(self) -> None:
        """For `send_batch` implementations: local misuse is a clear exception."""
        if self._closed:
            raise trio.ClosedResourceError("link is closed")

    @abstractmethod
    async def send_batch(self, packets: Sequence[LinkPacket]) -> None: ...

    @abstractmethod
    async def _receive_batch(self) -> list[bytes]: ...

    @abstractmethod
    async def _aclose(self) -> None: ...
