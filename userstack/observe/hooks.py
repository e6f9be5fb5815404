"""What the driver reports to whoever watches (tracer, pcap tap, ladder recorder).

The driver calls these only when an observer is installed, so nothing is formatted
per packet when nobody watches.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.offload import LinkPacket


class Direction(Enum):
    IN = "in"  # from the link into the stack
    OUT = "out"  # from the stack onto the link


class Observer(Protocol):
    def packet(self, direction: Direction, packet: LinkPacket, now: float) -> None:
        """A whole IPv4 packet crossed the link boundary (with offload, perhaps an
        `OffloadedPacket` or `Vouched` bytes: `userstack.wire.offload.link_packet_bytes`
        makes it a checked packet)."""

    def state_changed(
        self, local: Endpoint, remote: Endpoint, old: State, new: State, now: float
    ) -> None:
        """A connection moved between RFC 9293 states."""
