"""The fuzzer's pieces: a stack with a connection in every RFC 9293 state, hostile packets
aimed at them, and the invariants checked after each one.

Only the stack's public side is used: packets in (`receive_packets`), packets out
(`take_packets`), timers (`on_timer`, `next_deadline`), the user calls on the
`ConnectionHandle`s that `accept` and `connect` return, and `connections(now)`, whose
`TcbInfo` rows are what the invariants read. The peers are scripted: their packets are
crafted here, byte by byte where a hostile one needs it (options, data offset, reserved
bits, the urgent pointer, checksums right or wrong).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from stack_helpers import ACK, FIN, KEY, PEER, SYN, US, packet, seg

from userstack.stack import Stack
from userstack.stack.handle import ConnectionHandle
from userstack.tcp.config import TcpConfig
from userstack.tcp.errors import ConnectionFailed, ConnectionStateError
from userstack.tcp.info import TcbInfo, TimerKind
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.checksum import internet_checksum, pseudo_header_sum
from userstack.wire.icmp import ICMP_ERROR_TYPES
from userstack.wire.ipv4 import IPPROTO_TCP, ipv4_header
from userstack.wire.packet import build_icmp_error_packet, parse_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpOptions, TcpSegment

CONFIG = TcpConfig(recv_buffer=16 * 1024, send_buffer=16 * 1024)
BACKLOG = {80: 16, 81: 2}  # a roomy listener and one that fills at once (both queues)
ROUTER = IPv4Address("192.0.2.1")
_M32 = 0xFFFFFFFF

# States whose earliest timer is known from the state alone.
_TIMER_OF = {
    State.SYN_SENT: {TimerKind.RETRANSMIT},
    State.SYN_RECEIVED: {TimerKind.RETRANSMIT},
    State.TIME_WAIT: {TimerKind.TIME_WAIT},
}
# States with our FIN unacknowledged: some timer must be armed, or the FIN is never resent.
_FIN_OUT = {State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}
_CAN_SEND = {State.ESTABLISHED, State.CLOSE_WAIT}


def replies_to(stack: Stack, port: int) -> list[TcpSegment]:
    """The stack's queued TCP segments to the peer's `port` (the rest are dropped)."""
    out = []
    for raw in stack.take_packets():
        _, segment = parse_packet(raw)
        if isinstance(segment, TcpSegment) and segment.dst_port == port:
            out.append(segment)
    return out


@dataclass
class Scene:
    """A stack under attack, the handles its application holds, and the time."""

    stack: Stack
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # the peers' ISNs
    now: float = 0.0
    handles: list[ConnectionHandle] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # the stack's latest packets, to quote
    next_port: int = 20000

    def port(self) -> int:
        self.next_port += 1
        return self.next_port

    # ---- building a connection into each state -------------------------------------

    def passive(self, *, ack: bool = True) -> tuple[int, int, int]:
        """A peer's SYN to port 80 (and its ACK): (peer port, peer's next seq, our next seq)."""
        port, isn = self.port(), self.rng.getrandbits(32)
        options = TcpOptions(mss=1460, window_scale=7, sack_permitted=True)
        self.stack.receive_packets([packet(seg(port, 80, SYN, seq=isn, options=options))],
                                   self.now)
        (syn_ack,) = replies_to(self.stack, port)
        ours = syn_ack.seq.value + 1
        if ack:
            self.stack.receive_packets(
                [packet(seg(port, 80, ACK, seq=isn + 1, ack=ours, window=1000))], self.now)
            handle = self.stack.accept(80)
            assert handle is not None
            self.handles.append(handle)
        return port, (isn + 1) & _M32, ours

    def send_peer(self, port: int, flags: int, seq: int, ack: int, payload: bytes = b"") -> None:
        self.stack.receive_packets(
            [packet(seg(port, 80, flags, seq=seq, ack=ack, window=1000, payload=payload))],
            self.now)
        self.stack.take_packets()

    def every_state(self) -> None:
        """One connection (or more) in each of the ten states a TCB can be seen in."""
        for port, backlog in BACKLOG.items():
            # the SYN queue as small as the accept queue: port 81's fills at once, and its
            # next SYNs get cookies (RFC 4987 3.6)
            self.stack.listen(port, backlog, syn_backlog=backlog)
        self.passive(ack=False)  # SYN-RECEIVED
        self.handles.append(self.stack.connect(Endpoint(PEER, 9), self.now))  # SYN-SENT
        self.passive()  # ESTABLISHED, idle
        self.passive()
        self.handles[-1].send(b"d" * 5000, self.now)  # ESTABLISHED, data in flight
        port, peer, ours = self.passive()  # ESTABLISHED, a hole in what it received
        self.send_peer(port, ACK, peer + 500, ours, b"o" * 300)
        port, peer, ours = self.passive()  # CLOSE-WAIT
        self.send_peer(port, FIN | ACK, peer, ours)
        port, peer, ours = self.passive()  # LAST-ACK
        self.send_peer(port, FIN | ACK, peer, ours)
        self.handles[-1].close(self.now)
        self.passive()  # FIN-WAIT-1
        self.handles[-1].close(self.now)
        port, peer, ours = self.passive()  # FIN-WAIT-2
        self.handles[-1].close(self.now)
        self.send_peer(port, ACK, peer, ours + 1)
        port, peer, ours = self.passive()  # TIME-WAIT
        self.handles[-1].close(self.now)
        self.handles[-1].release()
        self.send_peer(port, ACK, peer, ours + 1)
        self.send_peer(port, FIN | ACK, peer, ours + 1)
        port, peer, ours = self.passive()  # CLOSING: both FINs out, neither acknowledged
        self.handles[-1].close(self.now)
        self.send_peer(port, FIN | ACK, peer, ours)
        self.stack.take_packets()
        seen = {row.state for row in self.stack.connections(self.now)}
        assert seen == set(State) - {State.CLOSED}, seen


# ---- hostile packets ----------------------------------------------------------------------


def _sack_blocks(rng: random.Random, row: TcbInfo | None) -> bytes:
    base = row.snd_una if row is not None else rng.getrandbits(32)
    n = rng.randint(1, 4)
    edges = []
    for _ in range(n):
        left = (base + rng.choice([0, 1, -1, 1460, rng.randint(-70000, 70000)])) & _M32
        right = (left + rng.choice([0, 1, 1460, -1, rng.getrandbits(32)])) & _M32
        edges += [left, right]
    return struct.pack(f"!BB{2 * n}I", 5, 2 + 8 * n, *edges)


def hostile_options(rng: random.Random, row: TcbInfo | None) -> bytes:
    """An options area: well-formed with extreme values, or broken on purpose."""
    parts = []
    for _ in range(rng.randint(0, 4)):
        kind = rng.randrange(12)
        if kind == 0:
            parts.append(struct.pack("!BBH", 2, 4, rng.choice([0, 1, 47, 48, 536, 65535])))
        elif kind == 1:
            parts.append(struct.pack("!BBB", 3, 3, rng.choice([0, 7, 14, 15, 255])))
        elif kind == 2:
            parts.append(b"\x04\x02")
        elif kind == 3:
            parts.append(_sack_blocks(rng, row))
        elif kind == 4:
            parts.append(struct.pack("!BBII", 8, 10, rng.getrandbits(32), rng.getrandbits(32)))
        elif kind == 5:  # a length that lies: 0, 1, or past the end
            parts.append(bytes([rng.randrange(256), rng.choice([0, 1, 39, 255])]))
        elif kind == 6:
            parts.append(b"\x01" * rng.randint(1, 3))  # NOPs
        elif kind == 7:
            parts.append(b"\x00" + rng.randbytes(rng.randint(0, 6)))  # EOL, then junk
        elif kind == 8:  # a known kind with the wrong length
            parts.append(bytes([rng.choice([2, 3, 4, 5, 8]), rng.choice([2, 3, 5, 9, 11, 18])]))
        elif kind == 9:  # unknown kinds, well-formed
            body = rng.randbytes(rng.randint(0, 8))
            parts.append(bytes([rng.randint(9, 254), 2 + len(body)]) + body)
        else:
            parts.append(rng.randbytes(rng.randint(1, 8)))
    return b"".join(parts)[:40]


def tcp_packet(
    src: IPv4Address, dst: IPv4Address, sport: int, dport: int, seq: int, ack: int, flags: int,
    window: int, *, options: bytes = b"", payload: bytes = b"", urgent: int = 0,
    reserved: int = 0,
) -> bytes:
    """An IPv4 packet with a TCP segment built byte by byte (checksums right)."""
    options += b"\x00" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & _M32, ack & _M32,
                         offset << 4 | reserved, flags, window, 0, urgent) + options
    body = header + payload
    checksum = internet_checksum(body, pseudo_header_sum(src, dst, IPPROTO_TCP, len(body)))
    body = body[:16] + struct.pack("!H", checksum) + body[18:]
    return ipv4_header(src, dst, IPPROTO_TCP, len(body)) + body


def fix_checksums(data: bytearray) -> None:
    """Make the IPv4 and TCP checksums right again after bits were flipped, where the
    header still says where they are."""
    if len(data) < 20:
        return
    ihl = (data[0] & 0xF) * 4
    if ihl < 20 or len(data) < ihl:
        return
    data[10:12] = b"\0\0"
    data[10:12] = struct.pack("!H", internet_checksum(bytes(data[:ihl])))
    total = int.from_bytes(data[2:4], "big")
    if data[9] != IPPROTO_TCP or not ihl + 20 <= total <= len(data):
        return
    body = data[ihl:total]
    body[16:18] = b"\0\0"
    src, dst = int.from_bytes(data[12:16], "big"), int.from_bytes(data[16:20], "big")
    body[16:18] = struct.pack("!H", internet_checksum(
        bytes(body), pseudo_header_sum(src, dst, IPPROTO_TCP, len(body))))
    data[ihl:total] = body


def _near(rng: random.Random, value: int | None, window: int) -> int:
    if value is None:
        return rng.getrandbits(32)
    return (value + rng.choice([0, 0, 0, 1, -1, window, window - 1, window + 1,
                                rng.randint(-3000, 3000), rng.getrandbits(32)])) & _M32


_FLAG_SETS = [0x10, 0x10, 0x18, 0x02, 0x12, 0x04, 0x14, 0x11, 0x01, 0x20, 0x30, 0x03, 0x06,
              0x07, 0xFF, 0x00]


def aimed(rng: random.Random, row: TcbInfo | None) -> bytes:
    """A segment aimed at `row`'s connection (or a random port: no TCB), its numbers
    near the edges of the connection's windows, its flags and options hostile."""
    if row is None:
        sport, dport, src = rng.randrange(1, 65536), rng.randrange(1, 65536), PEER
    elif row.state is State.LISTEN:
        sport, dport, src = rng.randrange(1024, 65536), row.local.port, PEER
    else:
        sport, dport, src = row.remote.port, row.local.port, row.remote.ip
    wnd = row.rcv_wnd if row is not None else 65535
    seq = _near(rng, row.rcv_nxt if row is not None else None, wnd)
    ack = _near(rng, rng.choice([row.snd_una, row.snd_nxt]) if row is not None else None,
                row.snd_wnd if row is not None else 65535)
    flags = rng.choice(_FLAG_SETS) if rng.random() < 0.8 else rng.randrange(256)
    payload = b"" if rng.random() < 0.5 else rng.randbytes(rng.choice([1, 2, 100, 1400]))
    return tcp_packet(
        src, US, sport, dport, seq, ack, flags, rng.choice([0, 1, 1000, 65535]),
        options=hostile_options(rng, row) if rng.random() < 0.5 else b"", payload=payload,
        urgent=rng.choice([0, 0, 1, len(payload), 65535]),
        reserved=rng.choice([0, 0, 0, rng.randrange(16)]),
    )


def flipped(rng: random.Random, data: bytes, *, fix: bool) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        bit = rng.randrange(len(out) * 8)
        out[bit // 8] ^= 1 << (bit % 8)
    if fix:
        fix_checksums(out)
    return bytes(out)


def hostile_packet(rng: random.Random, rows: list[TcbInfo], sent: list[bytes]) -> bytes:
    """One packet of the mix: aimed segments, flipped (with checksums fixed, or not),
    cut or lengthened, ICMP errors quoting what the stack sent, or noise."""
    row = rng.choice(rows) if rows and rng.random() < 0.95 else None
    mode = rng.random()
    if mode < 0.45:
        return aimed(rng, row)
    if mode < 0.65:
        return flipped(rng, aimed(rng, row), fix=True)
    if mode < 0.72:
        return flipped(rng, aimed(rng, row), fix=False)
    if mode < 0.78:
        data = aimed(rng, row)
        cut = rng.randrange(len(data) + 1)
        return data[:cut] if rng.random() < 0.5 else data + rng.randbytes(rng.randint(1, 40))
    if mode < 0.90 and sent:
        kind = rng.choice(sorted(ICMP_ERROR_TYPES))
        quoted = rng.choice(sent)
        return build_icmp_error_packet(
            ROUTER, US, kind, rng.randrange(16), quoted,
            next_hop_mtu=rng.choice([0, 1, 67, 68, 576, 1400, 65535]),
            quote=rng.choice([8, 20, len(quoted)]))
    if mode < 0.95:
        body = rng.randbytes(rng.randint(0, 60))
        return ipv4_header(PEER, US, rng.choice([IPPROTO_TCP, 1, 17, 255]), len(body)) + body
    return rng.randbytes(rng.randint(0, 80))


# ---- the application, acting now and then -----------------------------------------------

_EXPECTED = (ConnectionStateError, ConnectionFailed)  # local misuse: the clear exceptions


def user_action(rng: random.Random, scene: Scene) -> None:
    """What an application might do next: accept, send, read, close, abort, forget."""
    stack, now = scene.stack, scene.now
    for port in BACKLOG:
        handle = stack.accept(port)
        if handle is not None:
            scene.handles.append(handle)
    if not scene.handles:
        return
    handle = rng.choice(scene.handles)
    action = rng.randrange(6)
    try:
        if action == 0:
            handle.send(rng.randbytes(rng.choice([1, 1000, 20000])), now)
        elif action in (1, 2):
            handle.receive(rng.choice([1, 65536]), now)
        elif action == 3:
            handle.close(now, half=rng.random() < 0.3)
        elif action == 4:
            handle.abort(now)
        else:
            handle.release()
            scene.handles.remove(handle)
    except _EXPECTED:
        pass


# ---- invariants ---------------------------------------------------------------------------


def check_invariants(stack: Stack, now: float, config: TcpConfig = CONFIG) -> None:
    """What must hold after every packet, read from the public snapshots."""
    counters = stack.counters
    assert counters.internal_errors == 0, "an exception in the stack's own handling"
    assert counters.connection_bugs == 0, "an exception escaped a connection"
    half_open: dict[int, int] = {}
    for row in stack.connections(now):
        assert row.state is not State.CLOSED, f"a CLOSED TCB is still in the table: {row}"
        if row.state is State.LISTEN:
            assert row.local.port in BACKLOG and row.remote.port == 0, row
            continue
        where = f"{row.state} {row.local}-{row.remote}"
        una, nxt = SeqNum(row.snd_una), SeqNum(row.snd_nxt)
        assert una <= nxt, f"{where}: SND.UNA {row.snd_una} > SND.NXT {row.snd_nxt}"
        assert nxt - una <= config.send_buffer + 2, f"{where}: more in flight than was sent"
        assert 0 <= row.recv_q <= config.recv_buffer, f"{where}: recv_q {row.recv_q}"
        assert 0 <= row.send_q <= config.send_buffer, f"{where}: send_q {row.send_q}"
        want = _TIMER_OF.get(row.state)
        if want is not None:
            assert row.timer in want, f"{where}: timer {row.timer}, want {want}"
        if row.state in _FIN_OUT or (row.state in _CAN_SEND and (row.send_q or una != nxt)):
            assert row.timer is not None, f"{where}: data or FIN unacknowledged, no timer"
        if row.state is State.SYN_RECEIVED and row.local.port in BACKLOG:  # not a crossed SYN
            half_open[row.local.port] = half_open.get(row.local.port, 0) + 1
    for port, count in half_open.items():
        assert count <= BACKLOG[port], f"{count} half-open on port {port}"


def fire_timers(stack: Stack, now: float) -> None:
    """on_timer(now) if a timer is due; after it, none may be due still (the driver would
    spin on it)."""
    deadline = stack.next_deadline()
    if deadline is not None and deadline <= now:
        stack.on_timer(now)
    deadline = stack.next_deadline()
    assert deadline is None or deadline > now, f"timer due at {deadline} still pending at {now}"


def check_output(packets: list[bytes]) -> None:
    """Everything the stack sends parses, and comes from its own address."""
    for raw in packets:
        ip, _ = parse_packet(raw)
        assert ip.src == US, ip


# ---- the fuzz loop and the transfer after it ------------------------------------------------


def fuzz(seed: int, packets: int, *, round_length: int = 500,
         on_packet: Callable[[Scene], None] | None = None) -> Scene:
    """`packets` hostile packets, in rounds of `round_length` against a fresh scene of
    every state; invariants after each. Returns the last scene, its attack over."""
    rng = random.Random(seed)
    scene = Scene(Stack(US, key=KEY, config=CONFIG), rng)
    done = 0
    while done < packets:
        scene = Scene(Stack(US, key=KEY, config=CONFIG), rng)
        scene.every_state()
        check_invariants(scene.stack, scene.now)
        for _ in range(min(round_length, packets - done)):
            rows = scene.stack.connections(scene.now)
            scene.stack.receive_packets([hostile_packet(rng, rows, scene.sent)], scene.now)
            if rng.random() < 0.05:
                user_action(rng, scene)
            scene.now += rng.expovariate(200.0) if rng.random() < 0.99 else rng.uniform(1, 30)
            fire_timers(scene.stack, scene.now)
            out = scene.stack.take_packets()
            check_output(out)
            scene.sent = (scene.sent + out)[-8:]
            check_invariants(scene.stack, scene.now)
            if on_packet is not None:
                on_packet(scene)
            done += 1
    return scene


def serves_a_transfer(scene: Scene, size: int = 200_000) -> None:
    """After the attack: time runs on until the half-open entries are gone, the
    application lets go of what it held, and a new client moves `size` bytes each way,
    checked by sha256."""
    stack = scene.stack
    for handle in scene.handles:
        with contextlib.suppress(_EXPECTED):
            handle.abort(scene.now)
    for port in BACKLOG:
        while (handle := stack.accept(port)) is not None:
            handle.abort(scene.now)
    end = scene.now + 400  # past the SYN-ACK retries (183 s) and TIME-WAIT (240 s)
    while (deadline := stack.next_deadline()) is not None and deadline <= end:
        scene.now = deadline
        stack.on_timer(scene.now)
        check_output(stack.take_packets())
        check_invariants(stack, scene.now)
    scene.now = end

    client = Stack(IPv4Address("10.0.0.77"), key=KEY, config=CONFIG)
    ours = client.connect(Endpoint(US, 80), scene.now)
    theirs: ConnectionHandle | None = None
    up, down = random.Random(1).randbytes(size), random.Random(2).randbytes(size)
    got_up, got_down, sent_up, sent_down = bytearray(), bytearray(), 0, 0
    for _ in range(100_000):
        for a, b in ((client, stack), (stack, client)):
            b.receive_packets(a.take_packets(), scene.now)
        if theirs is None:
            theirs = stack.accept(80)
        if theirs is not None:
            sent_down += theirs.send(down[sent_down:sent_down + 16384], scene.now)
            got_up += theirs.receive(65536, scene.now)
        sent_up += ours.send(up[sent_up:sent_up + 16384], scene.now)
        got_down += ours.receive(65536, scene.now)
        if len(got_up) == len(got_down) == size:
            break
        scene.now += 0.001
        fire_timers(client, scene.now)
        fire_timers(stack, scene.now)
        check_invariants(stack, scene.now)
    assert hashlib.sha256(got_up).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(got_down).digest() == hashlib.sha256(down).digest()
