"""How each connection in a capture closed, as its segments crossed the wire.

From the first FIN on, each segment is written as who sent it ("a", the end that sent
that first FIN, or "b") and whether it carried a FIN ("F") or not ("."), repeated pure
ACKs (window updates) counted once:

    aF b. bF a.     four-way: FIN, ACK, FIN, ACK (RFC 9293 3.6, the normal close)
    aF bF a.        three-way: the second FIN carries the ACK of the first
    aF bF a. b.     simultaneous: the FINs cross (3.6); "aF bF b. a." too

Anything else is spelled out. A FIN sent again (the same end, the same SEG.SEQ: its ACK
came late, as on a loaded machine) and a RST (the answer, from an end already closed, to
an ACK of that FIN) change nothing about how the close went, and are left out.
"""

from __future__ import annotations

from pathlib import Path

from ..wire import Endpoint, PcapReader, TcpFlags, WireError, parse_tcp_packet

SHAPES = {"aF b. bF a.": "four-way", "aF bF a.": "three-way",
          "aF bF a. b.": "simultaneous", "aF bF b. a.": "simultaneous"}


class _Close:
    """One connection's close, seen so far."""

    __slots__ = ("closer", "fins", "steps")

    def __init__(self) -> None:
        self.closer: Endpoint | None = None  # who sent the first FIN
        self.fins: set[tuple[Endpoint, int]] = set()  # (sender, SEG.SEQ) of each FIN
        self.steps: list[str] = []


def close_shapes(pcap: Path) -> dict[tuple[Endpoint, Endpoint], str]:
    """(client, server) of each connection whose SYN the capture holds: how it closed, a
    name from SHAPES, its steps spelled out, or "not closed"."""
    closes: dict[frozenset[Endpoint], tuple[Endpoint, Endpoint, _Close]] = {}
    with pcap.open("rb") as f:
        for _, packet in PcapReader(f):
            try:
                ip, seg = parse_tcp_packet(packet)
            except WireError:
                continue  # not TCP: the kernel's IPv6 chatter (RS, MLD) is captured too
            src, dst = Endpoint(ip.src, seg.src_port), Endpoint(ip.dst, seg.dst_port)
            ends = frozenset((src, dst))
            if seg.flags & TcpFlags.SYN and not seg.flags & TcpFlags.ACK:
                closes[ends] = (src, dst, _Close())  # a new connection on these ends
            found = closes.get(ends)
            fin = bool(seg.flags & TcpFlags.FIN)
            if found is None or seg.flags & TcpFlags.RST:
                continue
            close = found[2]
            if fin:
                if (src, int(seg.seq)) in close.fins:
                    continue  # a FIN sent again
                close.fins.add((src, int(seg.seq)))
                if close.closer is None:
                    close.closer = src
            elif close.closer is None:
                continue  # before the close
            step = ("a" if src == close.closer else "b") + ("F" if fin else ".")
            if fin or not close.steps or step != close.steps[-1]:
                close.steps.append(step)
    shapes = {}
    for client, server, close in closes.values():
        steps = " ".join(close.steps)
        shapes[client, server] = SHAPES.get(steps, steps or "not closed")
    return shapes
