"""Drive one Connection by hand: "in state X, segment S arrives at time t -> it emits
exactly [...] and is in state Y".

The peer is imaginary: `seg(...)` builds what it sends us (ports already swapped),
`out(...)` describes what we expect to see, with unspecified fields ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import Event
from userstack.wire.addr import Endpoint
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment

SYN = TcpFlags.SYN
ACK = TcpFlags.ACK
FIN = TcpFlags.FIN
RST = TcpFlags.RST
PSH = TcpFlags.PSH
URG = TcpFlags.URG
NOFLAGS = TcpFlags(0)

LOCAL = Endpoint(IPv4Address("10.0.0.1"), 40000)
REMOTE = Endpoint(IPv4Address("10.0.0.2"), 80)
LOCAL6 = Endpoint(IPv6Address("fd00::1"), 40000)  # the state fixtures run in both families
REMOTE6 = Endpoint(IPv6Address("fd00::2"), 80)
ISS = SeqNum(5000)  # ours
IRS = SeqNum(9000)  # the peer's
MSS = 1000
# Small, readable numbers: no window scaling (the buffer fits in 16 bits), 1000-byte MSS,
# ACK at once (delayed ACKs have their own tests).
CFG = TcpConfig(mss=MSS, recv_buffer=8000, send_buffer=16000, delayed_ack=0.0, msl=10.0,
                timestamps=False)
# For data tests: Nagle off, room to queue well beyond any window.
NODELAY = TcpConfig(mss=MSS, recv_buffer=8000, send_buffer=64000, delayed_ack=0.0, nagle=False,
                    timestamps=False)
PEER_WINDOW = 8000


def seq(n: int) -> SeqNum:
    return SeqNum(n)


def seg(
    seq: SeqNum | int,
    ack: SeqNum | int | None = None,
    flags: TcpFlags = NOFLAGS,
    *,
    window: int = PEER_WINDOW,
    payload: bytes = b"",
    options: TcpOptions = NO_OPTIONS,
    urgent: int = 0,
) -> TcpSegment:
    """A segment from the peer. Passing `ack` sets the ACK flag; `urgent` (the urgent
    pointer field) sets URG."""
    if urgent:
        flags |= URG
    if ack is not None:
        flags |= ACK
    return TcpSegment(
        src_port=REMOTE.port,
        dst_port=LOCAL.port,
        seq=SeqNum(int(seq)),
        ack=SeqNum(int(ack)) if ack is not None else SeqNum(0),
        flags=flags,
        window=window,
        options=options,
        payload=payload,
        urgent=urgent,
    )


@dataclass(frozen=True)
class Out:
    """An expected outgoing segment; None fields are not checked."""

    seq: int
    ack: int | None = None
    flags: TcpFlags = ACK
    payload: bytes | None = b""
    window: int | None = None
    options: TcpOptions | None = None

    def matches(self, s: TcpSegment) -> bool:
        return (
            s.src_port == LOCAL.port
            and s.dst_port == REMOTE.port
            and s.seq.value == self.seq
            and (self.ack is None or s.ack.value == self.ack)
            and s.flags == self.flags
            and (self.payload is None or s.payload == self.payload)
            and (self.window is None or s.window == self.window)
            and (self.options is None or s.options == self.options)
        )


def out(
    seq: SeqNum | int,
    ack: SeqNum | int | None = None,
    flags: TcpFlags = ACK,
    *,
    payload: bytes | None = b"",
    window: int | None = None,
    options: TcpOptions | None = None,
) -> Out:
    return Out(
        int(seq), None if ack is None else int(ack), flags, payload, window, options
    )


def send(conn: Connection, s: TcpSegment, at: float = 0.0) -> None:
    conn.on_segment(s, at)


def show(s: TcpSegment | Out) -> str:
    """A short tcpdump-like description for assertion messages."""
    payload = s.payload
    data = "?" if payload is None else f"{len(payload)}B"
    ack = s.ack.value if isinstance(s, TcpSegment) else s.ack
    seq = s.seq.value if isinstance(s, TcpSegment) else s.seq
    return f"<{s.flags!r} seq={seq} ack={ack} win={s.window} {data}>"


def expect(conn: Connection, expected: list[Out]) -> list[TcpSegment]:
    """Exactly these segments went out, in this order."""
    got = conn.take_outgoing()
    message = f"expected {[show(e) for e in expected]}\n     got {[show(g) for g in got]}"
    assert len(got) == len(expected), message
    for e, g in zip(expected, got, strict=True):
        assert e.matches(g), message
    return got


def expect_nothing(conn: Connection, at: float | None = None) -> None:
    """Nothing went out (and, with `at`, nothing does when the timers run at that time)."""
    if at is not None:
        conn.on_timer(at)
    got = conn.take_outgoing()
    assert got == [], f"expected nothing, got {[show(g) for g in got]}"


def events_of(conn: Connection, *kinds: type) -> list[Event]:
    evs = conn.take_events()
    if not kinds:
        return evs
    return [e for e in evs if isinstance(e, kinds)]


def established(
    config: TcpConfig = CFG, iss: SeqNum = ISS, irs: SeqNum = IRS, peer_window: int = PEER_WINDOW,
    peer_options: TcpOptions | None = None, rtt: float = 0.0,
    endpoints: tuple[Endpoint, Endpoint] = (LOCAL, REMOTE),
) -> Connection:
    """An actively opened connection in ESTABLISHED at time 0, outgoing and events
    drained. Its SYN went out at -rtt: the handshake's RTT sample is `rtt`."""
    conn = Connection.open_active(*endpoints, iss=iss, now=-rtt, config=config)
    conn.take_outgoing()
    opts = peer_options if peer_options is not None else TcpOptions(mss=MSS)
    conn.on_segment(seg(irs, iss + 1, SYN, window=peer_window, options=opts), 0.0)
    conn.take_outgoing()
    conn.take_events()
    return conn
