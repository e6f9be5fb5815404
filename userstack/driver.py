"""The only place where the sans-I/O stack meets time and a link (trio).

Two tasks share one Stack:

- the receiver waits for a batch from the link, feeds it to the stack in one call,
  tells the stream layer which connections changed, and wakes the pump;
- the pump fires due timers, tells the stream layer what changed, writes every queued packet to the
  link in one `send_batch`, then sleeps until it is woken (a packet arrived, the
  application called into the stack) or the earliest deadline passes. Packets to the
  stack's own address loop straight back in (`localhost`).

`now` is always `trio.current_time()`, so under `trio.testing.MockClock` every
timer of every connection runs in virtual time. With no observer installed nothing
is formatted or copied per packet.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from .link.base import Link
from .observe.hooks import Direction, Observer
from .stack import ConnectionHandle, Stack
from .tcp.events import StateChanged

ChangeSink = Callable[[list[ConnectionHandle], set[int]], None]
"""Told (connections that had events, listening ports that gained a connection)."""


def _ignore_changes(changed: list[ConnectionHandle], accept_ready: set[int]) -> None:
    """The sink of a driver nobody listens to (sans-I/O tests of the driver alone)."""


class Driver:
    """Moves packets link -> stack -> link; see the module docstring."""

    def __init__(
        self,
        stack: Stack,
        link: Link,
        *,
        observer: Observer | None = None,
        on_changed: ChangeSink = _ignore_changes,
    ) -> None:
        self.stack = stack
        self.link = link
        self.observer = observer
        self.on_changed = on_changed
        self.link_lost = False  # sending failed: the link is closed or its far end is gone
        self._wakeup = trio.Event()

    def wake(self) -> None:
        """Something changed in the stack (a user call): the pump should look at it."""
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop)
            task_status.started()
            await self._pump_loop()

    def _dispatch(self, now: float) -> None:
        stack = self.stack
        events = stack.take_events()
        observer = self.observer
        if observer is not None:
            for conn, conn_events in events:
                for event in conn_events:
                    if type(event) is StateChanged:
                        observer.state_changed(conn.local, conn.remote, event.old, event.new, now)
        changed = stack.take_changed()
        ready = stack.take_accept_ready()
        if changed or ready:
            self.on_changed(changed, ready)

    async def _receive_loop(self) -> None:
        link, stack = self.link, self.stack
        while True:
            try:
                batch = await link.receive_batch()
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                return  # nothing will arrive any more; timers still run
            now = trio.current_time()
            observer = self.observer
            if observer is not None:
                for packet in batch:
                    observer.packet(Direction.IN, packet, now)
                    if stack.explain is not None:  # its decisions follow its trace line
                        stack.receive_packets((packet,), now)
            if observer is None or stack.explain is None:
                stack.receive_packets(batch, now)
            self._dispatch(now)
            self._wakeup.set()

    async def _pump_loop(self) -> None:
        stack = self.stack
        while True:
            self._wakeup = trio.Event()  # wakes from here on are seen by the wait below
            now = trio.current_time()
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= now:
                stack.on_timer(now)
            self._dispatch(now)
            self._loop_back(now)
            packets = stack.take_packets()
            if packets:
                await self._send(packets, now)
            deadline = stack.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wakeup.wait()

    def _loop_back(self, now: float) -> None:
        """Packets to the stack's own address (`localhost` connections) never reach the
        link: they come straight back in, as through a loopback interface; the answers
        go out on the next turn."""
        looped = self.stack.take_looped()
        if not looped:
            return
        observer = self.observer
        if observer is not None:
            for packet in looped:
                observer.packet(Direction.OUT, packet, now)
                observer.packet(Direction.IN, packet, now)
        self.stack.receive_packets(looped, now)
        self._dispatch(now)
        self._wakeup.set()

    async def _send(self, packets: list[bytes], now: float) -> None:
        observer = self.observer
        if observer is not None:
            for packet in packets:
                observer.packet(Direction.OUT, packet, now)
        if self.link_lost:
            return  # nowhere to go: as good as lost on the wire
        try:
            await self.link.send_batch(packets)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.link_lost = True
