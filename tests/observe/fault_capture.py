"""A lossy connection recorded the way `userstack serve --pcap --loss` records one: two
stacks in memory, the client's link wrapped in a seeded FaultyLink whose drops, copies and
corruptions go into a pcapng capture as comments (`FaultCapture`), in virtual time.

Also the maker of docs/images/ladder-loss.*:

    .venv/bin/python tests/observe/fault_capture.py docs/images/ladder-loss.pcap
    .venv/bin/userstack ladder docs/images/ladder-loss.pcap -o docs/images/ladder-loss.svg
    rsvg-convert -o docs/images/ladder-loss.png docs/images/ladder-loss.svg
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.testing

import userstack
from userstack.link.faults import FaultCapture, FaultCounters, FaultyLink
from userstack.observe.trace import Tracer
from userstack.wire.pcapng import Fault, PcapngWriter

EPOCH = 1_700_000_000.0  # virtual time zero, as a date for tcpdump
PAYLOAD = bytes(range(256)) * 24  # 6144 bytes: five segments each way


@dataclass
class Recorded:
    faults: FaultCounters  # what the client's fault link did, both directions
    echoed_sha256: str
    sent_sha256: str
    trace: list[str]


def record_lossy_connection(
    path: Path, *, loss: float = 0.06, seed: int = 24, duplicate: float = 0.0,
    corrupt: float = 0.0,
) -> Recorded:
    """One echo exchange of PAYLOAD through the faults, captured into `path` (pcapng)."""
    lines: list[str] = []

    async def main() -> Recorded:
        left, right = userstack.memory_link_pair(delay=0.005)  # 5 ms each way
        with path.open("wb") as f:

            def clock() -> float:
                return EPOCH + trio.current_time()

            capture = FaultCapture(PcapngWriter(f, "memory (fault link)"), clock=clock)
            tracer = Tracer(_Lines(lines), relative=True)  # type: ignore[arg-type]

            def on_packet(direction: str, packet: bytes, fault: Fault | None, now: float) -> None:
                capture.packet(direction, packet, fault, now)
                if fault is not None:
                    tracer.fault(fault, direction, packet, now)

            link = faulty = FaultyLink(left, seed=seed, loss=loss, duplicate=duplicate,
                                       corrupt=corrupt, on_packet=on_packet)
            async with (
                userstack.open_stack(link, "10.0.0.1", observer=tracer) as client,
                userstack.open_stack(right, "10.0.0.2") as server,
                trio.open_nursery() as nursery,
            ):
                await nursery.start(server.serve_tcp, _echo, 7)
                stream = await client.open_tcp_stream("10.0.0.2", 7)
                await stream.send_all(PAYLOAD)
                await stream.send_eof()
                echoed = b"".join([chunk async for chunk in stream])
                await trio.sleep(5)  # the last ACKs, and any retransmission they need
                nursery.cancel_scope.cancel()
        return Recorded(faulty.counters, hashlib.sha256(echoed).hexdigest(),
                        hashlib.sha256(PAYLOAD).hexdigest(), lines)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def _echo(stream: userstack.TcpStream) -> None:
    async with stream:
        async for data in stream:
            await stream.send_all(data)


class _Lines:
    """A text file that keeps the lines written to it."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def write(self, text: str) -> int:
        self._lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass


if __name__ == "__main__":
    recorded = record_lossy_connection(Path(sys.argv[1]))
    print(recorded.faults, recorded.echoed_sha256 == recorded.sent_sha256)
