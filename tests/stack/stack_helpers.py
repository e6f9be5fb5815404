"""Hand-driving a sans-I/O Stack: craft the peer's packets, decode the stack's answers."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from userstack.stack import ConnectionHandle, Stack
from userstack.tcp.config import TcpConfig
from userstack.tcp.rules import Explainer
from userstack.wire.addr import Endpoint
from userstack.wire.icmp import IcmpType
from userstack.wire.icmpv6 import Icmpv6Type
from userstack.wire.ipv4 import IPv4Packet
from userstack.wire.packet import (
    build_icmp_error_packet,
    build_icmpv6_error_packet,
    build_tcp6_packet,
    build_tcp_packet,
    parse_ip,
    parse_tcp_packet,
)
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

US = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.1")
KEY = bytes(range(16))
ROUTER = IPv4Address("192.0.2.1")
US6 = IPv6Address("fd00::2")
PEER6 = IPv6Address("fd00::1")
ROUTER6 = IPv6Address("2001:db8::1")
Address = IPv4Address | IPv6Address
Explain = Callable[[Endpoint, Endpoint], Explainer]

SYN, ACK, RST, FIN, PSH = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.RST, TcpFlags.FIN, TcpFlags.PSH


def make_stack(address: Address = US, **config: object) -> Stack:
    return Stack(address, key=KEY, config=TcpConfig(**config))  # type: ignore[arg-type]


def seg(
    sport: int,
    dport: int,
    flags: TcpFlags,
    *,
    seq: int = 0,
    ack: int = 0,
    window: int = 65535,
    payload: bytes = b"",
    options: TcpOptions | None = None,
) -> TcpSegment:
    return TcpSegment(
        sport,
        dport,
        SeqNum(seq),
        SeqNum(ack),
        flags,
        window,
        options or TcpOptions(),
        payload,
    )


def packet(segment: TcpSegment, src: Address = PEER, dst: Address = US) -> bytes:
    """The peer's packet, IPv4 or IPv6 by the addresses' family."""
    if src.version == 6:
        return build_tcp6_packet(src, dst, segment)
    return build_tcp_packet(src, dst, segment)


def replies(stack: Stack, src: Address = US) -> list[TcpSegment]:
    """Every packet the stack queued, decoded as TCP (asserting the addresses)."""
    out = []
    for raw in stack.take_packets():
        ip, segment = parse_tcp_packet(raw)
        assert ip.src == src
        out.append(segment)
    return out


def shuttle(a: Stack, b: Stack, now: float) -> int:
    """Move every queued packet between two stacks until both are quiet."""
    moved = 0
    while True:
        pa, pb = a.take_packets(), b.take_packets()
        if not pa and not pb:
            return moved
        for p in pa:
            b.receive_packet(p, now)
        for p in pb:
            a.receive_packet(p, now)
        moved += len(pa) + len(pb)


def connected_pair(
    us: Address = US, peer: Address = PEER, explain: Explain | None = None, **config: object
) -> tuple[Stack, Stack, ConnectionHandle, ConnectionHandle]:
    """A server stack (`us`, listening on 80) and a client stack (`peer`) with one
    ESTABLISHED connection: (server, client, the client's TCB, the server's TCB).
    `explain` hears the server's decisions (Stack.explain)."""
    server, client = make_stack(us, **config), make_stack(address=peer, **config)
    server.explain = explain
    server.listen(80, 4)
    conn = client.connect(Endpoint(us, 80), 0.0)
    shuttle(client, server, 0.0)
    peer = server.accept(80)
    assert peer is not None
    return server, client, conn, peer


def icmp_about(
    original: bytes, code: int, kind: IcmpType = IcmpType.DESTINATION_UNREACHABLE, mtu: int = 0
) -> bytes:
    """A router's ICMP error to the sender of `original` (a packet the stack sent)."""
    to = IPv4Packet.parse(original).src
    return build_icmp_error_packet(ROUTER, to, kind, code, original, next_hop_mtu=mtu)


def icmpv6_about(original: bytes, kind: Icmpv6Type, code: int = 0, value: int = 0) -> bytes:
    """A router's ICMPv6 error to the sender of the IPv6 packet `original`."""
    to = parse_ip(original).src
    return build_icmpv6_error_packet(ROUTER6, to, kind, code, original, value=value)


def two_connections() -> tuple[Stack, Stack, list[tuple[ConnectionHandle, ConnectionHandle]]]:
    """A server and a client stack with two ESTABLISHED connections to port 80:
    (server, client, [(client TCB, the server TCB of the same connection)] * 2)."""
    server, client = make_stack(), make_stack(address=PEER)
    server.listen(80, 4)
    clients = [client.connect(Endpoint(US, 80), 0.0) for _ in range(2)]
    shuttle(client, server, 0.0)
    accepted = [server.accept(80), server.accept(80)]
    by_port = {conn.remote.port: conn for conn in accepted if conn is not None}
    assert len(by_port) == 2
    return server, client, [(conn, by_port[conn.local.port]) for conn in clients]
