"""IPv6 in the sans-I/O Stack, and the behaviours that must be the same in both families:
RST for strays, handshake and close, ISN, ephemeral ports, echo, ICMP errors (no trio)."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv6Address

import pytest
from stack_helpers import (
    ACK,
    KEY,
    PEER,
    PEER6,
    RST,
    SYN,
    US,
    US6,
    Address,
    connected_pair,
    icmp_about,
    icmpv6_about,
    make_stack,
    packet,
    replies,
    seg,
    shuttle,
)

from userstack.stack import Stack
from userstack.stack.isn import IsnGenerator
from userstack.tcp.config import TcpConfig
from userstack.tcp.events import Error, ErrorReason
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.icmp import IcmpEcho, IcmpType
from userstack.wire.icmpv6 import Icmpv6Echo, Icmpv6Error, Icmpv6Type
from userstack.wire.ipv6 import ExtensionHeader, IPv6Packet, ipv6_header
from userstack.wire.offload import TSO, LinkPacket, OffloadedPacket, delivered
from userstack.wire.packet import (
    build_icmp_packet,
    build_icmpv6_packet,
    build_tcp6_packet,
    parse_ip,
    parse_packet,
)
from userstack.wire.tcp import TcpOptions
from userstack.wire.virtio import GsoType, VirtioNetHdr

FAMILIES = pytest.mark.parametrize(("us", "peer"), [(US, PEER), (US6, PEER6)], ids=["ipv4", "ipv6"])


def dual_stack(**config: object) -> Stack:
    return Stack(US, address6=US6, key=KEY, config=TcpConfig(**config))  # type: ignore[arg-type]


# ---- the same in both families ----------------------------------------------------------


@FAMILIES
def test_syn_to_closed_port_gets_rst_ack(us: Address, peer: Address) -> None:
    stack = make_stack(us)
    stack.receive_packet(packet(seg(40000, 80, SYN, seq=1000), peer, us), 0.0)
    assert replies(stack, us) == [seg(80, 40000, RST | ACK, seq=0, ack=1001, window=0)]
    assert stack.counters.rst_sent == 1


@FAMILIES
def test_handshake_data_close_and_time_wait(us: Address, peer: Address) -> None:
    server, client, conn, accepted = connected_pair(us, peer)
    assert (conn.state, accepted.state) == (State.ESTABLISHED, State.ESTABLISHED)
    assert accepted.remote == conn.local and accepted.local == Endpoint(us, 80)
    conn.send(b"hello", 0.1)
    shuttle(client, server, 0.1)
    assert accepted.receive(100, 0.1) == b"hello"
    conn.close(0.2)
    shuttle(client, server, 0.2)
    accepted.close(0.3)
    shuttle(client, server, 0.3)
    assert (conn.state, accepted.state) == (State.TIME_WAIT, State.CLOSED)
    client.on_timer(0.3 + 2 * client.config.msl)
    assert conn.state is State.CLOSED and client.connections(1000.0) == []


@FAMILIES
def test_isn_is_rfc_6528_over_the_four_tuple(us: Address, peer: Address) -> None:
    client = make_stack(peer)
    conn = client.connect(Endpoint(us, 80), 3.0)
    assert conn.info(3.0).iss == IsnGenerator(KEY).isn(conn.local, conn.remote, 3.0).value
    other = client.connect(Endpoint(us, 81), 3.0)
    assert other.info(3.0).iss != conn.info(3.0).iss


@FAMILIES
def test_ephemeral_ports_differ_per_connection(us: Address, peer: Address) -> None:
    client = make_stack(peer)
    ports = {client.connect(Endpoint(us, 80), 0.0).local.port for _ in range(20)}
    assert len(ports) == 20 and all(49152 <= p <= 65535 for p in ports)


@FAMILIES
def test_echo_request_is_answered(us: Address, peer: Address) -> None:
    stack = make_stack(us)
    if us.version == 6:
        request = build_icmpv6_packet(peer, us, Icmpv6Echo(Icmpv6Type.ECHO_REQUEST, 9, 3, b"x"))
        expected: object = Icmpv6Echo(Icmpv6Type.ECHO_REPLY, 9, 3, b"x")
    else:
        request = build_icmp_packet(peer, us, IcmpEcho(IcmpType.ECHO_REQUEST, 9, 3, b"x"))
        expected = IcmpEcho(IcmpType.ECHO_REPLY, 9, 3, b"x")
    stack.receive_packet(request, 0.0)
    [raw] = stack.take_packets()
    ip, reply = parse_packet(raw)
    assert (ip.src, ip.dst, reply) == (us, peer, expected)
    assert stack.counters.icmp_echo_replies == 1


@FAMILIES
def test_port_unreachable_refuses_a_connection_in_syn_sent(us: Address, peer: Address) -> None:
    client = make_stack(peer)
    conn = client.connect(Endpoint(us, 80), 0.0)
    [syn] = client.take_packets()
    if us.version == 6:
        error = icmpv6_about(syn, Icmpv6Type.DESTINATION_UNREACHABLE, 4)
    else:
        error = icmp_about(syn, 3)
    client.receive_packet(error, 0.1)
    assert conn.state is State.CLOSED and client.counters.icmp_errors_accepted == 1
    events = [e for _, batch in client.take_events() for e in batch]
    assert Error(ErrorReason.CONNECTION_REFUSED) in events


# ---- IPv6 only: MSS, flow label, Packet Too Big --------------------------------------------


def test_ipv6_advertises_the_mtu_minus_60() -> None:
    stack = dual_stack(mss=1460)
    stack.listen(80, 4, version=4)
    stack.listen(80, 4, version=6)
    stack.receive_packet(packet(seg(4000, 80, SYN, seq=1), PEER, US), 0.0)
    stack.receive_packet(packet(seg(4000, 80, SYN, seq=1), PEER6, US6), 0.0)
    v4, v6 = (parse_packet(raw)[1] for raw in stack.take_packets())
    assert (v4.options.mss, v6.options.mss) == (1460, 1440)  # RFC 9293 3.7.1


def test_each_connection_has_one_flow_label() -> None:
    _server, client, conn, _ = connected_pair(US6, PEER6)
    conn.send(b"a" * 3000, 0.1)
    labels = {parse_ip(raw).flow_label for raw in client.take_packets()}
    other = client.connect(Endpoint(US6, 81), 0.2)
    [syn] = client.take_packets()
    assert len(labels) == 1 and 0 not in labels  # RFC 6437 3
    assert parse_ip(syn).flow_label not in labels and other.state is State.SYN_SENT


# RFC 8201: >= 1280; the payload is the MTU less 60, and the 12 bytes of timestamps
@pytest.mark.parametrize(("mtu", "mss"), [(1400, 1328), (1000, 1208)])
def test_packet_too_big_lowers_the_mss(mtu: int, mss: int) -> None:
    _server, client, conn, _ = connected_pair(US6, PEER6)
    conn.send(b"a" * 4000, 0.1)
    first = client.take_packets()[0]
    client.receive_packet(icmpv6_about(first, Icmpv6Type.PACKET_TOO_BIG, value=mtu), 0.2)
    assert client.counters.icmp_errors_accepted == 1
    resent = [parse_packet(raw)[1] for raw in client.take_packets()]
    assert resent and max(len(s.payload) for s in resent) == mss


def test_listeners_are_per_family() -> None:
    stack = dual_stack()
    stack.listen(80, 4, version=4)
    stack.receive_packet(packet(seg(4000, 80, SYN, seq=1), PEER6, US6), 0.0)
    assert [s.flags for s in replies(stack, US6)] == [RST | ACK]
    stack.listen(80, 4, version=6)
    stack.receive_packet(packet(seg(4001, 80, SYN, seq=1), PEER6, US6), 0.0)
    assert [s.flags for s in replies(stack, US6)] == [SYN | ACK]
    rows = {
        (str(r.local), str(r.remote)) for r in stack.connections(0.0) if r.state is State.LISTEN
    }
    assert rows == {("10.0.0.2:80", "0.0.0.0:0"), ("[fd00::2]:80", "[::]:0")}
    assert stack.listening_ports == [80]
    with pytest.raises(OSError, match="already listening"):
        stack.listen(80, 4, version=6)
    stack.unlisten(80, 0.0, version=6)
    assert stack.accept(80, version=4) is None


def test_a_family_without_an_address_is_refused() -> None:
    v4_only, v6_only = make_stack(US), make_stack(US6)
    with pytest.raises(OSError) as caught:
        v4_only.connect(Endpoint(PEER6, 80), 0.0)
    assert caught.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError, match="no IPv4 address"):
        v6_only.listen(80, 1, version=4)
    assert v6_only.address == US6 and v6_only.address6 == US6
    assert v4_only.address6 is None
    with pytest.raises(ValueError, match="needs an IPv4 address"):
        Stack(None, key=KEY)
    with pytest.raises(ValueError, match="one family"):
        Stack(US, address6="10.0.0.3", key=KEY)


# ---- what IPv6 hosts drop, count and answer --------------------------------------------------


def _chatter() -> list[bytes]:
    """What a kernel sends on a TUN it brings up: MLD reports, router and neighbour
    solicitations (RFC 3810, RFC 4861)."""
    lla = IPv6Address("fe80::1")
    return [
        build_icmpv6_packet(lla, IPv6Address("ff02::16"), Icmpv6Echo(143, 0, 0, bytes(20))),
        build_icmpv6_packet(lla, IPv6Address("ff02::2"), Icmpv6Echo(133, 0, 0)),
        build_icmpv6_packet(
            IPv6Address(0), IPv6Address("ff02::1:ff00:2"), Icmpv6Echo(135, 0, 0, US6.packed)
        ),
        build_icmpv6_packet(PEER6, US6, Icmpv6Echo(136, 0, 0, PEER6.packed)),
    ]


def test_link_chatter_is_counted_and_dropped() -> None:
    stack = make_stack(US6)
    stack.receive_packets(_chatter(), 0.0)
    assert stack.take_packets() == []
    assert stack.counters.ipv6_link_chatter == 4 and stack.counters.malformed == 0


@pytest.mark.parametrize(
    "source", ["::", "::1", "::ffff:10.0.0.1", "::10.0.0.1", "ff02::1"], ids=str
)
def test_sources_that_are_not_one_host_are_dropped(source: str) -> None:
    stack = make_stack(US6)
    stack.listen(80, 4)
    stack.receive_packet(build_tcp6_packet(IPv6Address(source), US6, seg(1, 80, SYN)), 0.0)
    assert stack.take_packets() == [] and stack.counters.bad_source == 1


def _problem(stack: Stack) -> Icmpv6Error:
    [raw] = stack.take_packets()
    ip, error = parse_packet(raw)
    assert isinstance(error, Icmpv6Error) and error.type == Icmpv6Type.PARAMETER_PROBLEM
    assert (ip.src, ip.dst) == (US6, PEER6)
    return error


def test_unknown_next_header_gets_parameter_problem_code_1() -> None:
    """RFC 8200 4: UDP (17) is an unrecognized Next Header to a host without UDP."""
    stack = make_stack(US6)
    stack.receive_packet(ipv6_header(PEER6, US6, 17, 8) + bytes(8), 0.0)
    error = _problem(stack)
    assert (error.code, error.pointer) == (1, 6)
    assert stack.counters.unsupported_protocol == 1
    stack.receive_packet(ipv6_header(PEER6, US6, 59, 0), 0.0)  # No Next Header: silence
    assert stack.take_packets() == []


def test_bad_option_and_routing_header_get_parameter_problems() -> None:
    stack = make_stack(US6)
    tcp = seg(1, 80, SYN).build(PEER6, US6)
    option = ExtensionHeader(60, bytes((0x9E, 4)) + bytes(4))  # 10xxxxxx: report
    stack.receive_packet(IPv6Packet(PEER6, US6, 6, tcp, headers=(option,)).build(), 0.0)
    assert (e := _problem(stack)).code == 2 and e.pointer == 42
    rh0 = ExtensionHeader(43, bytes((0, 1)) + bytes(20))  # RFC 5095: type 0, 1 segment left
    stack.receive_packet(IPv6Packet(PEER6, US6, 6, tcp, headers=(rh0,)).build(), 0.0)
    assert (e := _problem(stack)).code == 0 and e.pointer == 42
    assert stack.counters.malformed == 2 and stack.counters.icmp_errors_sent == 2


def test_no_error_about_an_icmpv6_error_and_errors_are_rate_limited() -> None:
    stack = make_stack(US6)
    error_with_bad_option = IPv6Packet(
        PEER6,
        US6,
        58,
        bytes((1, 0, 0, 0)) + bytes(44),
        headers=(ExtensionHeader(60, bytes((0x9E, 4)) + bytes(4)),),
    ).build()
    stack.receive_packet(error_with_bad_option, 0.0)
    assert stack.take_packets() == []  # RFC 4443 2.4 (e.1)
    udp = ipv6_header(PEER6, US6, 17, 8) + bytes(8)
    stack.receive_packets([udp] * 25, 0.0)
    assert len(stack.take_packets()) == 10  # the burst (RFC 4443 2.4 (f))
    assert stack.counters.icmp_errors_rate_limited == 15
    stack.receive_packets([udp] * 5, 0.3)  # 0.3 s at 10 a second: 3 tokens back
    assert len(stack.take_packets()) == 3


def test_v4_and_v6_connections_share_ports_without_colliding() -> None:
    server = dual_stack()
    server.listen(80, 4, version=4)
    server.listen(80, 4, version=6)
    syn = seg(5000, 80, SYN, seq=1, options=TcpOptions(mss=1000))
    server.receive_packets([packet(syn, PEER, US), packet(syn, PEER6, US6)], 0.0)
    answers = [parse_ip(raw) for raw in server.take_packets()]
    assert [ip.dst for ip in answers] == [PEER, PEER6]
    assert {r.remote for r in server.connections(0.0) if r.state is State.SYN_RECEIVED} == {
        Endpoint(PEER, 5000),
        Endpoint(PEER6, 5000),
    }
    assert isinstance(server.address, IPv4Address)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "cut"])
def test_ipv6_connections_send_super_segments_over_an_offloading_link(whole: bool) -> None:
    """TSO6: an IPv6 connection over a link that segments sends super-segments (virtio
    gso_type TCPV6, partial checksum); the far stack takes them vouched for (`whole`, as the
    kernel hands up its own) or as the kernel's GSO cuts them, checksums verified."""
    server = Stack(US6, key=KEY, config=TcpConfig(), offload=TSO)
    client = Stack(PEER6, key=KEY, config=TcpConfig(), offload=TSO)
    server.listen(80, 4)
    conn = client.connect(Endpoint(US6, 80), 0.0)
    for _ in range(2):  # SYN; SYN,ACK; ACK
        server.receive_packets(delivered(client.take_packets(), whole=whole), 0.0)
        client.receive_packets(delivered(server.take_packets(), whole=whole), 0.0)
    server.receive_packets(delivered(client.take_packets(), whole=whole), 0.0)
    accepted = server.accept(80, version=6)
    assert accepted is not None
    data = bytes(range(256)) * 400
    conn.send(data, 0.1)
    sent: list[LinkPacket] = []
    got, now = b"", 0.1
    while len(got) < len(data) and now < 10:
        now += 0.01
        out = client.take_packets()
        sent += out
        server.receive_packets(delivered(out, whole=whole), now)
        client.receive_packets(delivered(server.take_packets(), whole=whole), now)
        got += accepted.receive(1 << 20, now)
    assert got == data and server.counters.malformed == 0
    supers = [p for p in sent if type(p) is OffloadedPacket and p.gso_size]
    # the MSS: 1500 - 60, less the 12 bytes of timestamps
    assert supers and all(p.gso_size == 1428 and p.ipv6 for p in supers)
    assert VirtioNetHdr.parse(supers[0].virtio_header).gso_type is GsoType.TCPV6


def test_a_connection_to_our_own_ipv6_address_loops_back() -> None:
    stack = dual_stack()
    stack.listen(80, 4, version=6)
    conn = stack.connect(Endpoint(US6, 80), 0.0)
    assert stack.take_packets() == []  # nothing for the link
    for _ in range(4):
        stack.receive_packets(stack.take_looped(), 0.0)
    assert conn.state is State.ESTABLISHED and stack.accept(80, version=6) is not None
