"""A SYN flood in virtual time (RFC 4987): spoofed SYNs from random sources at a fixed
rate against a listening Stack, and a real client Stack connecting every 100 ms beside
them. Sans-I/O: packets are moved by hand, every `now` is a number."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from stack_helpers import KEY, PEER, SYN, US, seg

from userstack.stack import Stack
from userstack.stack.handle import ConnectionHandle
from userstack.tcp.config import TcpConfig
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.packet import build_tcp_packet
from userstack.wire.tcp import TcpOptions

TICK = 0.01  # seconds of virtual time per step
CONNECT_EVERY = 10  # ticks: a legitimate connect every 100 ms
SPOOFED = int(IPv4Address("198.18.0.0"))  # RFC 2544's benchmarking range, a /15
GREETING = b"hello"
SUCCESS_WITHIN = 1.0  # s: a connect that needed a SYN retransmission counts as failed
PEER_INT = int(PEER)


@dataclass
class Attempt:
    """One legitimate connect: when, and whether the server read its greeting."""

    at: float
    conn: ConnectionHandle
    established_at: float | None = None
    served: bool = False

    @property
    def succeeded(self) -> bool:
        return (
            self.served
            and self.established_at is not None
            and self.established_at - self.at < SUCCESS_WITHIN
        )


@dataclass
class FloodResult:
    during: list[Attempt] = field(default_factory=list)
    after: list[Attempt] = field(default_factory=list)
    max_rows: int = 0  # the server's connection table, LISTEN row included
    max_half_open: int = 0  # SYN-RECEIVED rows
    rows_at_end: int = 0
    syns_sent: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def rate(attempts: list[Attempt]) -> float:
        return sum(a.succeeded for a in attempts) / len(attempts)


def run_flood(
    *, flood_seconds: float, after_seconds: float, rate: int = 10_000, seed: int = 1,
    backlog: int = 128, syn_cookies: bool = True, delay: float = 0.0,
) -> FloodResult:
    """`delay`: each packet between the legitimate client and the server arrives this
    long after it left (one way; 0: in the same tick). The last connects leave time for
    three trips (SYN, SYN,ACK, ACK and greeting) before the end."""
    rnd = random.Random(seed)
    path = Path(delay)
    server = Stack(US, key=KEY, syn_cookies=syn_cookies)
    server.listen(80, backlog)
    client = Stack(PEER, key=b"the client's own secret", config=TcpConfig(msl=1.0))
    result = FloodResult()
    by_port: dict[int, Attempt] = {}
    connecting: list[Attempt] = []
    served: list[ConnectionHandle] = []
    per_tick = round(rate * TICK)
    flood_ticks = round(flood_seconds / TICK)
    total_ticks = flood_ticks + round(after_seconds / TICK)
    last_connect = total_ticks * TICK - 4 * delay
    for tick in range(total_ticks):
        now = tick * TICK
        if tick < flood_ticks:
            server.receive_packets(
                [spoofed_syn(rnd) for _ in range(per_tick)], now
            )
            result.syns_sent += per_tick
        if tick % CONNECT_EVERY == 0 and now < last_connect:
            conn = client.connect(Endpoint(US, 80), now)
            attempt = Attempt(now, conn)
            by_port[conn.local.port] = attempt
            connecting.append(attempt)
            (result.during if tick < flood_ticks else result.after).append(attempt)
        server.on_timer(now)
        client.on_timer(now)
        path.exchange(server, client, now)
        serve(server, served, by_port, now)
        for attempt in [a for a in connecting if a.conn.state is not State.SYN_SENT]:
            connecting.remove(attempt)
            conn = attempt.conn
            if conn.state is State.ESTABLISHED:
                attempt.established_at = now
                conn.send(GREETING, now)
                conn.close(now, half=True)
        path.exchange(server, client, now)
        client.take_events()
        client.take_changed()
        client.take_accept_ready()
        if tick % 100 == 0:
            rows = server.connections(now)
            result.max_rows = max(result.max_rows, len(rows))
            half_open = sum(1 for r in rows if r.state is State.SYN_RECEIVED)
            result.max_half_open = max(result.max_half_open, half_open)
    result.rows_at_end = len(server.connections(total_ticks * TICK))
    result.counters = server.counters.as_dict()
    return result


def spoofed_syn(rnd: random.Random) -> bytes:
    src = SPOOFED + rnd.getrandbits(17)
    syn = seg(rnd.randrange(1024, 65536), 80, SYN, seq=rnd.getrandbits(32),
              options=TcpOptions(mss=1460, window_scale=7, sack_permitted=True))
    return build_tcp_packet(src, US, syn)


@dataclass
class Path:
    """The legitimate client's path to the server: every packet arrives `delay` seconds
    after it left; the server's replies to spoofed hosts are lost."""

    delay: float
    to_client: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, packet)
    to_server: list[tuple[float, bytes]] = field(default_factory=list)

    def exchange(self, server: Stack, client: Stack, now: float) -> None:
        """Send what both have to send and deliver what has arrived by `now`, until quiet."""
        mine = PEER_INT.to_bytes(4, "big")
        while True:
            arrive = now + self.delay
            self.to_client += [(arrive, p) for p in server.take_packets() if p[16:20] == mine]
            self.to_server += [(arrive, p) for p in client.take_packets()]
            for_client, self.to_client = _arrived(self.to_client, now)
            for_server, self.to_server = _arrived(self.to_server, now)
            if not for_client and not for_server:
                return
            client.receive_packets(for_client, now)
            server.receive_packets(for_server, now)


def _arrived(queue: list[tuple[float, bytes]], now: float
             ) -> tuple[list[bytes], list[tuple[float, bytes]]]:
    """(the packets that arrived by `now`, those still on the way)."""
    eps = 1e-9  # `now` is tick * TICK: a packet due at that time has arrived
    return ([p for at, p in queue if at <= now + eps],
            [(at, p) for at, p in queue if at > now + eps])


def serve(
    server: Stack, served: list[ConnectionHandle], by_port: dict[int, Attempt], now: float
) -> None:
    """The server's application: accept everything, read the greeting, then close."""
    server.take_events()
    server.take_changed()
    server.take_accept_ready()
    while (conn := server.accept(80)) is not None:
        served.append(conn)
    for conn in list(served):
        if conn.readable:
            data = conn.receive(100, now)
            attempt = by_port.get(conn.remote.port)
            if attempt is not None and data == GREETING:
                attempt.served = True
        if conn.eof_received or conn.state is State.CLOSED:
            if conn.state is not State.CLOSED:
                conn.close(now)
            served.remove(conn)
