"""A bulk transfer over a simulated path, in virtual time: where the plots of cwnd come from.

Two sans-I/O `Connection`s, a sender and a receiver, joined by a path like the ones
congestion control is written for: the sender's packets queue at a bottleneck (a rate and a
tail-drop queue, link/shaper.py's `Bottleneck`), may then be lost at random (seeded), and
arrive `delay` seconds later; the receiver's ACKs come back after the same delay. With
`mark_above`, the bottleneck is an ECN-marking AQM too: an ECN-capable packet that finds
more than that many packets queued is marked CE (RFC 3168 5) instead of waiting to be
dropped when the queue overflows (a step threshold, as DCTCP's K). No trio,
no clock: the loop jumps from one event (an arrival, a timer) to the next, so a 50 MB
transfer takes seconds of real time, and the same seed gives the same run.

What it records: the sender's cwnd and ssthresh after every event that changed them
(`Sample`), the packets as a capture taken at the sender would have them (for the
time-sequence graph), the bytes that arrived (checked by sha256), and what the path did.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from ..link.shaper import Bottleneck
from ..tcp.config import TcpConfig
from ..tcp.connection import Connection
from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.ipv4 import Ecn
from ..wire.packet import build_tcp_packet
from ..wire.pcap import PcapWriter
from ..wire.seq import SeqNum
from ..wire.tcp import TcpSegment

SENDER = Endpoint(IPv4Address("10.9.0.1"), 40000)
RECEIVER = Endpoint(IPv4Address("10.9.0.2"), 5001)
HEADERS = 40  # bytes of IPv4 + TCP header counted against the bottleneck per segment
_ECT = (Ecn.ECT_0, Ecn.ECT_1)


@dataclass(frozen=True, slots=True)
class SimPath:
    """The path: a bottleneck of `bits_per_second` with a `queue` of packets, then random
    `loss` (sender to receiver only) and `delay` seconds each way; during an `outage`
    (start, seconds) everything the sender sends is lost, as when a link flaps; with
    `mark_above`, ECT packets that find more than that many queued are marked CE."""

    bits_per_second: float = 20e6
    queue: int = 50
    delay: float = 0.02
    loss: float = 0.0
    seed: int = 1
    outage: tuple[float, float] | None = None
    mark_above: int | None = None

    def out(self, now: float) -> bool:
        """Whether the path is down at `now`."""
        return self.outage is not None and 0 <= now - self.outage[0] < self.outage[1]


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    cwnd: int
    ssthresh: int


@dataclass(slots=True)
class SimResult:
    size: int
    intact: bool  # every byte arrived, in order (sha256)
    elapsed: float  # from the SYN to the last byte acknowledged
    samples: list[Sample] = field(default_factory=list)
    packets: list[tuple[float, bytes]] = field(default_factory=list)
    queue_drops: int = 0
    random_losses: int = 0  # random loss and outage
    segments: int = 0

    timeouts: int = 0  # retransmission timeouts of the sender
    retransmissions: int = 0  # data segments the sender sent again
    marked: int = 0  # packets the bottleneck marked CE
    ecn_reductions: int = 0  # the sender's cwnd reductions for ECE (RFC 3168 6.1.2)

    def write_pcap(self, path: str) -> None:
        with open(path, "wb") as f:
            writer = PcapWriter(f)
            for time, packet in self.packets:
                writer.write(packet, time)


class _Run:
    """The event loop of one transfer."""

    def __init__(self, size: int, path: SimPath, config: TcpConfig, record: bool) -> None:
        self.rng = random.Random(path.seed)
        self.path = path
        self.data = self.rng.randbytes(size)
        self.bottleneck = Bottleneck(path.bits_per_second, path.queue)
        self.sender = Connection.open_active(
            SENDER, RECEIVER, iss=SeqNum(self.rng.getrandbits(32)), now=0.0, config=config)
        self.receiver = Connection.open_passive(
            RECEIVER, SENDER, iss=SeqNum(self.rng.getrandbits(32)), now=0.0, config=config)
        self.heap: list[tuple[float, int, bool, object]] = []  # (due, order, to_receiver, seg)
        self.order = 0
        self.record = record
        self.result = SimResult(size, intact=False, elapsed=0.0)
        self.queued = 0
        self.digest = hashlib.sha256()
        self.received = 0
        self.backoffs = 0  # the sender's consecutive timeouts, as last seen
        self.sent_to: SeqNum | None = None  # one past the highest data the sender sent

    def _push(self, due: float, to_receiver: bool, seg: object) -> None:
        heapq.heappush(self.heap, (due, self.order, to_receiver, seg))
        self.order += 1

    def _transmit(self, now: float) -> None:
        result, path = self.result, self.path
        for conn, forward in ((self.sender, True), (self.receiver, False)):
            src, dst = (SENDER, RECEIVER) if forward else (RECEIVER, SENDER)
            for seg in conn.take_outgoing():
                result.segments += 1
                if self.record:
                    result.packets.append((now, build_tcp_packet(src.ip, dst.ip, seg)))
                if not forward:
                    self._push(now + path.delay, False, seg)
                    continue
                self._count_retransmission(seg)
                left = self.bottleneck.admit(HEADERS + len(seg.payload), now)
                if left is None:
                    result.queue_drops += 1
                elif path.out(now) or (path.loss and self.rng.random() < path.loss):
                    result.random_losses += 1
                else:
                    self._push(left + path.delay, True, self._mark(seg))

    def _count_retransmission(self, seg: TcpSegment) -> None:
        if not seg.payload:
            return
        end = seg.seq + len(seg.payload)
        if self.sent_to is not None and seg.seq < self.sent_to:
            self.result.retransmissions += 1
        if self.sent_to is None or end > self.sent_to:
            self.sent_to = end

    def _mark(self, seg: TcpSegment) -> TcpSegment:
        """The AQM: CE on an ECN-capable packet that found the queue above the threshold."""
        above = self.path.mark_above
        if above is None or self.bottleneck.queued <= above or seg.ecn not in _ECT:
            return seg
        self.result.marked += 1
        return replace(seg, ecn=Ecn.CE)

    def _application(self, now: float) -> None:
        sender, size = self.sender, len(self.data)
        if self.queued < size and sender.state is State.ESTABLISHED and sender.send_space:
            self.queued += sender.send(memoryview(self.data)[self.queued :], now)
        chunk = self.receiver.receive(1 << 30, now)
        if chunk:
            self.digest.update(chunk)
            self.received += len(chunk)

    def _sample(self, now: float) -> None:
        info = self.sender.info(now)
        if info.retransmits > self.backoffs:
            self.result.timeouts += info.retransmits - self.backoffs
        self.backoffs = info.retransmits
        samples = self.result.samples
        if not samples or (samples[-1].cwnd, samples[-1].ssthresh) != (info.cwnd, info.ssthresh):
            samples.append(Sample(now, info.cwnd, info.ssthresh))

    def run(self, time_limit: float) -> SimResult:
        now, size = 0.0, len(self.data)
        sender, receiver = self.sender, self.receiver
        while now < time_limit:
            self._application(now)
            self._transmit(now)
            self._sample(now)
            if self.received == size and sender.info(now).send_q == 0:
                break
            candidates = [d for d in (sender.next_deadline(), receiver.next_deadline()) if d]
            if self.heap:
                candidates.append(self.heap[0][0])
            if not candidates:
                break  # nothing will ever happen again: stuck
            now = max(now, min(candidates))
            while self.heap and self.heap[0][0] <= now:
                _, _, to_receiver, seg = heapq.heappop(self.heap)
                (receiver if to_receiver else sender).on_segment(seg, now)  # type: ignore[arg-type]
            for conn in (sender, receiver):
                deadline = conn.next_deadline()
                if deadline is not None and deadline <= now:
                    conn.on_timer(now)
        result = self.result
        result.elapsed = now
        if sender.sender.ecn is not None:
            result.ecn_reductions = sender.sender.ecn.reductions
        result.intact = self.received == size and self.digest.digest() == hashlib.sha256(
            self.data).digest()
        return result


def simulate(
    size: int,
    path: SimPath | None = None,
    config: TcpConfig | None = None,
    *,
    record: bool = True,
    time_limit: float = 3600.0,
) -> SimResult:
    """Send `size` bytes over `path` (default: 20 Mbit/s, 50 packets, 20 ms each way);
    `record` keeps every packet for a pcap."""
    cfg = config or TcpConfig(recv_buffer=1 << 20, send_buffer=1 << 20)
    return _Run(size, path or SimPath(), cfg, record).run(time_limit)
