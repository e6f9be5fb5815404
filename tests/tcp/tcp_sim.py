"""Two Connections joined by a seeded lossy channel, in virtual time (no trio, no sockets).

The channel drops, duplicates and delays (so reorders) segments. Each side's
"application" writes its data as send space allows, reads at its own pace, closes
once all its data is queued, and reads to EOF. Everything is seeded: a failing seed
replays exactly.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import Error
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpSegment

A = Endpoint(IPv4Address("10.1.0.1"), 50000)
B = Endpoint(IPv4Address("10.1.0.2"), 7)


@dataclass
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.01  # one-way base delay, seconds
    jitter: float = 0.0  # extra random delay: reorders segments


@dataclass
class App:
    conn: Connection
    to_send: bytes
    read_chunk: int  # bytes read per application tick (a slow reader shrinks windows)
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    closed: bool = False
    states: list[State] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)

    def tick(self, now: float) -> None:
        conn = self.conn
        if conn.failure is not None:
            return
        self.received += conn.receive(self.read_chunk, now)  # even once CLOSED
        if conn.state in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED):
            return
        if self.sent < len(self.to_send) and conn.send_space:
            self.sent += conn.send(memoryview(self.to_send)[self.sent :], now)
        if self.sent == len(self.to_send) and not self.closed:
            conn.close(now, half=True)  # shutdown(SHUT_WR): we still read to EOF
            self.closed = True

    def drain_events(self) -> None:
        for ev in self.conn.take_events():
            if isinstance(ev, Error):
                self.errors.append(ev)
            elif hasattr(ev, "new"):
                self.states.append(ev.new)


@dataclass
class Result:
    a: App
    b: App
    now: float
    segments: int


def run(
    seed: int,
    faults: Faults,
    a_bytes: int,
    b_bytes: int,
    *,
    config: TcpConfig | None = None,
    slow_reader: bool = False,
    time_limit: float = 3000.0,
    tick: float = 0.02,
    tap: Callable[[TcpSegment], None] | None = None,
    max_packet: int = 0,
) -> Result:
    """Run both applications to the end (or `time_limit`); `tap` sees every segment sent.
    With `max_packet`, both sides send super-segments up to that long (as over TSO)."""
    rng = random.Random(seed)
    cfg = config or TcpConfig(msl=1.0, recv_buffer=64 * 1024, send_buffer=64 * 1024)
    data_a = rng.randbytes(a_bytes)
    data_b = rng.randbytes(b_bytes)
    iss_a = SeqNum(rng.getrandbits(32))
    iss_b = SeqNum(rng.getrandbits(32))
    a = App(Connection.open_active(A, B, iss=iss_a, now=0.0, config=cfg), data_a,
            rng.choice([100, 3000, 1 << 30]) if slow_reader else 1 << 30)
    b = App(Connection.open_passive(B, A, iss=iss_b, now=0.0, config=cfg), data_b,
            rng.choice([100, 3000, 1 << 30]) if slow_reader else 1 << 30)
    if max_packet:
        a.conn.allow_super_segments(max_packet)
        b.conn.allow_super_segments(max_packet)
    queue: list[tuple[float, int, int, TcpSegment]] = []  # (time, order, to: 0=a 1=b, seg)
    order = 0
    segments = 0
    now = 0.0
    next_tick = 0.0

    def transmit(src: App, to: int) -> None:
        nonlocal order, segments
        for s in src.conn.take_outgoing():
            segments += 1
            if tap is not None:
                tap(s)
            copies = 2 if rng.random() < faults.duplicate else 1
            for _ in range(copies):
                if rng.random() < faults.loss:
                    continue
                when = now + faults.delay + rng.random() * faults.jitter
                heapq.heappush(queue, (when, order, to, s))
                order += 1

    apps = (a, b)
    while now < time_limit:
        transmit(a, 1)
        transmit(b, 0)
        a.drain_events()
        b.drain_events()
        if a.conn.state is State.CLOSED and b.conn.state is State.CLOSED:
            break
        candidates = [next_tick]
        if queue:
            candidates.append(queue[0][0])
        for app in apps:
            d = app.conn.next_deadline()
            if d is not None:
                candidates.append(d)
        now = max(now, min(candidates))
        while queue and queue[0][0] <= now:
            _, _, to, s = heapq.heappop(queue)
            apps[to].conn.on_segment(s, now)
        for app in apps:
            d = app.conn.next_deadline()
            if d is not None and d <= now:
                app.conn.on_timer(now)
        if now >= next_tick:
            a.tick(now)
            b.tick(now)
            next_tick = now + tick
    for app in apps:
        if app.conn.failure is None:
            app.received += app.conn.receive(1 << 30, now)
    return Result(a, b, now, segments)
