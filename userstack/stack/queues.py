"""One stack of several on a multi-queue TUN: its share of the ephemeral ports (sans-I/O).

`userstack serve --queues N` runs N stacks, one per TUN queue, all with the same address. A
four-tuple must never be in use in two of them, so each gets its own slice of the ephemeral
range (RFC 6056 3.2) for the connections it opens: slice i of N. Then the local port of a
connection the host opened says which stack owns it, and a stack can tell, for a segment it
has no TCB for, whether another stack may have one (see `Stack` and docs/scaling.md).

Connections the host accepts are owned by the stack whose queue the SYN came in on; the
kernel steers every later segment of the flow to the same queue (the flow's hash picks the
same queue again, and the queue that answered is on record), so nothing like this is needed
for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ports import EPHEMERAL_HIGH, EPHEMERAL_LOW


@dataclass(frozen=True, slots=True)
class QueueShare:
    """Stack `index` of `count`, sharing the ephemeral range `low`..`high`."""

    index: int
    count: int
    low: int = EPHEMERAL_LOW
    high: int = EPHEMERAL_HIGH

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"queue {self.index} is not one of {self.count}")
        if not 0 < self.low <= self.high <= 65535 or self.high - self.low + 1 < self.count:
            raise ValueError(f"cannot share ports {self.low}-{self.high} among {self.count}")

    @property
    def _width(self) -> int:
        return (self.high - self.low + 1) // self.count

    @property
    def ports(self) -> tuple[int, int]:
        """This stack's ephemeral ports, lowest and highest (the last slice takes the rest)."""
        low = self.low + self.index * self._width
        high = self.high if self.index == self.count - 1 else low + self._width - 1
        return low, high

    def owner(self, port: int) -> int | None:
        """Which stack's ephemeral slice holds `port`; None outside the ephemeral range."""
        if not self.low <= port <= self.high:
            return None
        return min((port - self.low) // self._width, self.count - 1)

    def owned_elsewhere(self, port: int) -> bool:
        """Whether `port` is another stack's ephemeral port (a TCB there may use it)."""
        owner = self.owner(port)
        return owner is not None and owner != self.index
