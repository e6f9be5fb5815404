"""The sans-I/O Stack: RST for strays, ICMP echo, drops, listeners, ports, demux (no trio)."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import (
    ACK,
    FIN,
    KEY,
    PEER,
    PSH,
    ROUTER,
    RST,
    SYN,
    US,
    connected_pair,
    icmp_about,
    make_stack,
    packet,
    replies,
    seg,
    shuttle,
    two_connections,
)

from userstack.stack import Stack
from userstack.stack.ports import EPHEMERAL_HIGH, EPHEMERAL_LOW
from userstack.tcp.connection import Connection, reset_for
from userstack.tcp.events import Closed, DataReadable, Error, ErrorReason
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.icmp import IcmpEcho, IcmpType
from userstack.wire.ipv4 import IPv4Packet, ipv4_header
from userstack.wire.packet import build_icmp_error_packet, build_icmp_packet, parse_icmp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags

# ---- RFC 9293 3.10.7.1: segments for no connection --------------------------------------


def test_syn_to_closed_port_gets_rst_ack() -> None:
    stack = make_stack()
    stack.receive_packet(packet(seg(40000, 80, SYN, seq=1000)), 0.0)
    # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>: SEG.LEN counts the SYN
    assert replies(stack) == [seg(80, 40000, RST | ACK, seq=0, ack=1001, window=0)]
    assert stack.counters.rst_sent == 1


def test_data_and_fin_without_ack_count_in_seg_len() -> None:
    stack = make_stack()
    stack.receive_packet(packet(seg(40000, 80, FIN | PSH, seq=2**32 - 2, payload=b"abc")), 0.0)
    assert replies(stack) == [seg(80, 40000, RST | ACK, seq=0, ack=2, window=0)]  # wraps


def test_ack_to_closed_port_gets_rst_from_its_ack() -> None:
    stack = make_stack()
    stack.receive_packet(packet(seg(40000, 80, ACK | PSH, seq=7, ack=5000, payload=b"x")), 0.0)
    assert replies(stack) == [seg(80, 40000, RST, seq=5000, ack=0, window=0)]


def test_stray_segment_is_answered_by_the_cores_reset_for() -> None:
    """The stack has no RST generator of its own: the core's `reset_for` answers."""
    stray = seg(40000, 80, ACK, seq=3, ack=9)
    stack = make_stack()
    stack.receive_packet(packet(stray), 0.0)
    assert replies(stack) == reset_for(stray)


def test_no_rst_for_rst() -> None:
    stack = make_stack()
    stack.receive_packet(packet(seg(40000, 80, RST, seq=7)), 0.0)
    stack.receive_packet(packet(seg(40000, 80, RST | ACK, seq=7, ack=9)), 0.0)
    assert stack.take_packets() == []
    assert stack.counters.rst_ignored == 2 and stack.counters.rst_sent == 0


# ---- ICMP, malformed, not for us ---------------------------------------------------------


def test_icmp_echo_request_is_answered() -> None:
    stack = make_stack()
    request = IcmpEcho(IcmpType.ECHO_REQUEST, 0x1234, 7, b"ping payload")
    stack.receive_packet(build_icmp_packet(PEER, US, request), 0.0)
    [raw] = stack.take_packets()
    ip, reply = parse_icmp_packet(raw)
    assert (ip.src, ip.dst) == (US, PEER)
    assert reply == IcmpEcho(IcmpType.ECHO_REPLY, 0x1234, 7, b"ping payload")
    assert stack.counters.icmp_echo_replies == 1


def test_icmp_echo_reply_is_dropped() -> None:
    stack = make_stack()
    stack.receive_packet(build_icmp_packet(PEER, US, IcmpEcho(IcmpType.ECHO_REPLY, 1, 1)), 0.0)
    assert stack.take_packets() == [] and stack.counters.icmp_ignored == 1


def test_icmp_errors_are_ignored_not_malformed() -> None:
    """ICMP errors for no connection, Source Quench (RFC 6633, RFC 9293 3.9.2.1 MUST-55)
    and unknown codes are counted and dropped; only garbage is `malformed`."""
    _, client, conn, _ = connected_pair()
    nobody = packet(seg(5555, 80, SYN), src=PEER, dst=US)
    client.receive_packet(icmp_about(nobody, 1), 0.1)
    not_from_us = packet(seg(80, conn.local.port, SYN), src=US, dst=PEER)  # quotes US -> PEER
    client.receive_packet(
        build_icmp_error_packet(ROUTER, PEER, IcmpType.DESTINATION_UNREACHABLE, 1, not_from_us),
        0.1,
    )
    assert client.counters.icmp_errors_no_connection == 2
    conn.send(b"x", 0.2)
    [sent] = client.take_packets()
    client.receive_packet(icmp_about(sent, 0, IcmpType.SOURCE_QUENCH), 0.3)  # RFC 6633
    client.receive_packet(icmp_about(sent, 99), 0.3)  # a code nobody defined
    counts = client.counters
    assert (counts.icmp_ignored, counts.icmp_errors_accepted, counts.malformed) == (2, 0, 0)
    garbled = icmp_about(sent, 1)
    client.receive_packet(garbled[:-1] + bytes([garbled[-1] ^ 1]), 0.3)
    assert counts.malformed == 1 and counts.icmp_errors_accepted == 0
    assert conn.info(0.3).soft_error is None


_ECHO = build_icmp_packet(PEER, US, IcmpEcho(IcmpType.ECHO_REQUEST, 1, 1, b"abcd"))
_SYN_TCP = packet(seg(1, 80, SYN))[20:]


def _corrupt_tcp_checksum(raw: bytes) -> bytes:
    return raw[:36] + bytes([raw[36] ^ 0xFF]) + raw[37:]  # IPv4 20 + TCP checksum at 16


@pytest.mark.parametrize(
    ("raw", "counter"),
    [
        (b"", "malformed"),
        (b"\x45" + b"\x00" * 10, "malformed"),
        (packet(seg(1, 80, SYN))[:-1], "malformed"),  # total length disagrees
        (_corrupt_tcp_checksum(packet(seg(1, 80, SYN))), "malformed"),
        (_ECHO[:-2] + b"zz", "malformed"),  # bad ICMP checksum
        (ipv4_header(PEER, US, 17, 8) + bytes(8), "unsupported_protocol"),  # UDP
        (packet(seg(1, 80, SYN), dst=IPv4Address("10.0.0.3")), "not_for_us"),
        (IPv4Packet(PEER, US, 6, _SYN_TCP, fragment_offset=1).build(), "fragments_in"),  # held
    ],
)
def test_bad_packets_are_dropped_and_counted(raw: bytes, counter: str) -> None:
    stack = make_stack()
    stack.receive_packet(raw, 0.0)
    assert stack.take_packets() == []
    counts = stack.counters.as_dict()
    assert counts[counter] == 1
    assert sum(counts.values()) == 2  # packets_in and the one drop counter


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 60))
def test_no_bytes_raise_out_of_receive(junk: bytes, cut: int) -> None:
    stack = make_stack()
    stack.listen(80, 4)
    base = packet(seg(40000, 80, SYN, seq=5))
    stack.receive_packet(junk, 0.0)
    stack.receive_packet(base[:cut] + junk, 0.0)  # a valid-looking header, garbage after
    counts = stack.counters.as_dict()
    # the stack's own code never raised (those two counters are how it would show)
    assert counts["internal_errors"] == 0 and counts["connection_bugs"] == 0
    assert counts["packets_in"] == 2
    # and each packet was accounted for: dropped and counted, answered, or given a TCB
    drops = sum(counts[name] for name in _DROPS)
    answered = len(stack.take_packets())
    embryos = len(stack.connections(0.0)) - 1  # the LISTEN row
    assert drops + answered + embryos >= 2


_DROPS = ("malformed", "not_for_us", "bad_source", "unsupported_protocol", "icmp_ignored",
          "icmp_errors_no_connection", "rst_ignored", "accept_queue_drops")


# ---- RFC 1122 3.2.1.3, RFC 9293 MUST-46 / MUST-63: TCP is point to point -----------------

_NOT_ONE_HOST = ["224.0.0.5", "239.1.2.3", "255.255.255.255", "10.0.0.255", "0.0.0.0"]


@pytest.mark.parametrize("address", _NOT_ONE_HOST)
def test_open_to_broadcast_or_multicast_is_refused(address: str) -> None:
    """MUST-46 (RFC 9293 3.9.1): an OPEN to a broadcast/multicast address is an error."""
    stack = Stack("10.0.0.2/24", key=KEY)  # knows its subnet: 10.0.0.255 is broadcast
    with pytest.raises(OSError, match="not a single host") as info:
        stack.connect(Endpoint(IPv4Address(address), 80), 0.0)
    assert info.value.errno == errno.ENETUNREACH
    assert stack.take_packets() == [] and stack.connections(0.0) == []


@pytest.mark.parametrize("address", _NOT_ONE_HOST)
@pytest.mark.parametrize("flags", [SYN, ACK, ACK | PSH])
def test_segments_from_broadcast_or_multicast_are_dropped_unanswered(
    address: str, flags: TcpFlags
) -> None:
    """MUST-63 (RFC 9293 3.10.7.2): a SYN from such a source gets no SYN,ACK; and no
    segment from one is ever answered with a RST (RFC 1122 4.2.3.10)."""
    stack = Stack("10.0.0.2/24", key=KEY)
    stack.listen(80, 4)
    src = IPv4Address(address)
    stack.receive_packet(packet(seg(40000, 80, flags, seq=1, ack=1), src=src), 0.0)
    stack.receive_packet(packet(seg(40000, 81, flags, seq=1, ack=1), src=src), 0.0)  # closed
    assert stack.take_packets() == []
    assert stack.counters.bad_source == 2 and stack.counters.rst_sent == 0
    assert [r.state for r in stack.connections(0.0)] == [State.LISTEN]


def test_without_a_prefix_the_subnet_broadcast_is_not_known() -> None:
    stack = make_stack()  # 10.0.0.2, no prefix: 10.0.0.255 may be a host
    stack.listen(80, 4)
    stack.receive_packet(packet(seg(40000, 80, SYN, seq=1), src=IPv4Address("10.0.0.255")), 0.0)
    assert [s.flags for s in replies(stack)] == [SYN | ACK]


# ---- listeners ---------------------------------------------------------------------------


def _handshake(stack: Stack, sport: int, iss: int = 1000, port: int = 80) -> int:
    """Complete a handshake from PEER:sport; returns the stack's SND.NXT."""
    stack.receive_packet(packet(seg(sport, port, SYN, seq=iss)), 0.0)
    [synack] = replies(stack)
    assert synack.flags == SYN | ACK and synack.ack == SeqNum(iss + 1)
    stack.receive_packet(packet(seg(sport, port, ACK, seq=iss + 1, ack=int(synack.seq) + 1)), 0.0)
    assert replies(stack) == []
    return int(synack.seq) + 1


def test_listener_completes_a_handshake_and_accepts() -> None:
    stack = make_stack()
    stack.listen(80, 8)
    assert stack.accept(80) is None
    _handshake(stack, 40000)
    assert stack.take_accept_ready() == {80}
    conn = stack.accept(80)
    assert conn is not None and conn.state is State.ESTABLISHED
    assert conn.remote == Endpoint(PEER, 40000) and conn.local == Endpoint(US, 80)
    assert stack.accept(80) is None


def test_a_batch_is_collected_once_per_connection() -> None:
    stack = make_stack()
    stack.listen(80, 8)
    acks = {sport: _handshake(stack, sport, iss=1000) for sport in (40000, 40001)}
    stack.take_events()
    data = [
        packet(seg(sport, 80, ACK | PSH, seq=1001 + 10 * i, ack=ack, payload=bytes(10)))
        for i in range(3)
        for sport, ack in acks.items()
    ]
    stack.receive_packets(data, 0.0)
    events = stack.take_events()
    assert sorted(conn.remote.port for conn, _ in events) == [40000, 40001]  # one entry each
    for conn, conn_events in events:
        assert conn.readable == 30 and any(type(e) is DataReadable for e in conn_events)


def test_a_connection_gone_mid_batch_leaves_the_table_at_once() -> None:
    """A RST and then a new SYN on the same four-tuple in one batch: the SYN finds the
    listener, not the dead TCB waiting to be collected."""
    stack = make_stack()
    stack.listen(80, 8)
    _handshake(stack, 40000, iss=1000)
    stack.receive_packets(
        [packet(seg(40000, 80, RST, seq=1001)), packet(seg(40000, 80, SYN, seq=5000))], 0.0
    )
    [synack] = replies(stack)
    assert synack.flags == SYN | ACK and synack.ack == SeqNum(5001)
    assert sorted(r.state.value for r in stack.connections(0.0)) == ["LISTEN", "SYN-RECEIVED"]


def test_syn_queue_and_accept_queue_have_their_own_limits() -> None:
    """RFC 4987 3.1: the SYN queue (syn_backlog) and the accept queue (backlog) are
    bounded apart; with SYN cookies off, a SYN beyond the SYN queue takes the place of
    the oldest half-open TCB (RFC 4987 3.4, tests/stack/test_stack_syn_flood.py)."""
    stack = Stack(US, key=KEY, syn_cookies=False)
    stack.listen(80, 8, syn_backlog=2)
    for sport in (1, 2, 3):
        stack.receive_packet(packet(seg(sport, 80, SYN, seq=100)), 0.0)
    assert [(s.dst_port, s.flags) for s in replies(stack)] == [
        (1, SYN | ACK), (2, SYN | ACK), (1, RST), (3, SYN | ACK)]
    assert stack.counters.syn_queue_recycled == 1
    rows = stack.connections(0.0)
    assert sorted(r.state.value for r in rows) == ["LISTEN", "SYN-RECEIVED", "SYN-RECEIVED"]

    stack2 = make_stack()
    stack2.listen(80, 2)
    _handshake(stack2, 1)
    _handshake(stack2, 2)
    stack2.receive_packet(packet(seg(3, 80, SYN, seq=100)), 0.0)  # accept queue full
    assert replies(stack2) == [] and stack2.counters.accept_queue_drops == 1
    assert stack2.accept(80) is not None  # room again
    stack2.receive_packet(packet(seg(3, 80, SYN, seq=100)), 0.0)
    assert [s.flags for s in replies(stack2)] == [SYN | ACK]


def test_listen_row_and_rst_to_listener() -> None:
    stack = make_stack()
    stack.listen(80, 5)
    [row] = stack.connections(0.0)
    assert row.state is State.LISTEN
    assert row.local == Endpoint(US, 80) and row.remote == Endpoint(IPv4Address(0), 0)
    assert (row.recv_q, row.send_q) == (0, 5)
    # LISTEN (RFC 9293 3.10.7.2): an ACK gets <SEQ=SEG.ACK><CTL=RST>; an RST is ignored.
    stack.receive_packet(packet(seg(5, 80, ACK, seq=1, ack=77)), 0.0)
    stack.receive_packet(packet(seg(5, 80, RST, seq=1)), 0.0)
    assert replies(stack) == [seg(80, 5, RST, seq=77, window=0)]
    assert len(stack.connections(0.0)) == 1  # the passive TCBs went back to LISTEN: discarded


def test_rst_in_syn_received_discards_the_tcb() -> None:
    stack = make_stack()
    stack.listen(80, 1)
    stack.receive_packet(packet(seg(9, 80, SYN, seq=100)), 0.0)
    [synack] = replies(stack)
    stack.receive_packet(packet(seg(9, 80, RST, seq=101)), 0.0)
    assert [r.state for r in stack.connections(0.0)] == [State.LISTEN]
    stack.receive_packet(packet(seg(10, 80, SYN, seq=100)), 0.0)  # backlog slot is free again
    assert [s.flags for s in replies(stack)] == [SYN | ACK]
    assert synack.dst_port == 9


def test_unlisten_resets_unaccepted_connections() -> None:
    stack = make_stack()
    stack.listen(80, 4)
    _handshake(stack, 1)
    stack.receive_packet(packet(seg(2, 80, SYN, seq=100)), 0.0)
    replies(stack)
    stack.unlisten(80, 0.0)
    assert sorted(s.dst_port for s in replies(stack) if s.flags & RST) == [1, 2]
    assert stack.connections(0.0) == []
    stack.receive_packet(packet(seg(3, 80, SYN, seq=1)), 0.0)
    assert [s.flags for s in replies(stack)] == [RST | ACK]  # closed port now


def test_listen_port_in_use_and_port_zero() -> None:
    stack = make_stack()
    stack.listen(80, 1)
    with pytest.raises(OSError, match="already listening"):
        stack.listen(80, 1)
    port = stack.listen(0, 1)
    assert EPHEMERAL_LOW <= port <= EPHEMERAL_HIGH
    assert sorted(stack.listening_ports) == sorted([80, port])


# ---- active opens, ports, demux ----------------------------------------------------------


def test_ephemeral_ports_are_distinct_and_in_range() -> None:
    stack = make_stack()
    remote = Endpoint(PEER, 80)
    ports = [stack.connect(remote, 0.0).local.port for _ in range(200)]
    assert len(set(ports)) == 200
    assert all(EPHEMERAL_LOW <= p <= EPHEMERAL_HIGH for p in ports)
    # RFC 6056 Algorithm 3: keyed, so another key starts elsewhere; same key, same sequence
    again = Stack(US, key=KEY)
    assert [again.connect(remote, 0.0).local.port for _ in range(5)] == ports[:5]
    other = Stack(US, key=b"another key")
    assert [other.connect(remote, 0.0).local.port for _ in range(5)] != ports[:5]


def test_ports_run_out_with_a_clear_error() -> None:
    stack = Stack(US, key=KEY, ephemeral_ports=(50000, 50002))
    remote = Endpoint(PEER, 80)
    assert len({stack.connect(remote, 0.0).local.port for _ in range(3)}) == 3
    with pytest.raises(OSError, match="no free ephemeral port"):
        stack.connect(remote, 0.0)
    stack.connect(Endpoint(PEER, 81), 0.0)  # another remote: the same ports are fine


def test_two_stacks_demux_two_connections() -> None:
    server, client, [(c1, s1), (c2, s2)] = two_connections()
    c1.send(b"one", 0.0)
    c2.send(b"two", 0.0)
    shuttle(client, server, 0.0)
    assert s1.receive(100, 0.0) == b"one"
    assert s2.receive(100, 0.0) == b"two"
    events = server.take_events()
    readable = {id(c) for c, evs in events if any(type(e) is DataReadable for e in evs)}
    assert readable == {id(s1._conn), id(s2._conn)}
    assert set(server.take_changed()) == {s1, s2}  # what the stream layer is told


def test_time_wait_stays_for_2msl_then_is_removed() -> None:
    server, client, conn, peer = connected_pair(msl=1.0)
    conn.close(0.0)
    shuttle(client, server, 0.0)
    peer.close(0.0)
    shuttle(client, server, 0.0)
    assert [r.state for r in client.connections(0.0)] == [State.TIME_WAIT]
    assert [r.state for r in server.connections(0.0)] == [State.LISTEN]
    assert client.next_deadline() == pytest.approx(2.0)
    client.on_timer(1.999)
    assert [r.state for r in client.connections(1.999)] == [State.TIME_WAIT]
    client.on_timer(2.0)
    assert client.connections(2.0) == []
    assert client.next_deadline() is None
    assert any(type(e) is Closed for _, evs in client.take_events() for e in evs)


class BuggyConnection(Connection):
    """A Connection with a bug in its SEGMENT ARRIVES (a slotted Connection takes no
    per-instance method, so the one broken connection changes class instead)."""

    __slots__ = ()

    def on_segment(self, *args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bug")


def test_a_bug_in_one_connection_does_not_hurt_the_others() -> None:
    server, client, [(c1, broken), (c2, healthy)] = two_connections()
    server.take_events()
    broken._conn.__class__ = BuggyConnection  # a bug inside the core, in this one alone
    c1.send(b"one", 0.0)
    c2.send(b"two", 0.0)
    shuttle(client, server, 0.0)
    assert server.counters.connection_bugs == 1
    assert healthy.receive(10, 0.0) == b"two"
    assert [r.state for r in server.connections(0.0)] == [State.LISTEN, State.ESTABLISHED]
    events = {id(c): evs for c, evs in server.take_events()}
    assert Error(ErrorReason.CONNECTION_RESET) in events[id(broken._conn)]
    assert broken.failure is ErrorReason.CONNECTION_RESET  # the reason, stored once
    assert broken in server.take_changed()  # its stream is told to look again
    assert c1.state is State.CLOSED  # the aborted connection's RST reached the client


def test_data_for_a_released_connection_is_answered_with_rst() -> None:
    server, client, conn, peer = connected_pair(delayed_ack=0.0)
    peer.close(0.0)  # the application closes and forgets the connection
    peer.release()
    shuttle(client, server, 0.0)
    assert (peer.state, conn.state) == (State.FIN_WAIT_2, State.CLOSE_WAIT)
    conn.send(b"nobody reads this", 0.0)
    shuttle(client, server, 0.0)
    assert server.counters.orphan_aborts == 1
    assert peer.state is State.CLOSED and conn.state is State.CLOSED
    assert server.connections(0.0)[1:] == [] and client.connections(0.0) == []


def test_a_bug_outside_any_connection_drops_the_packet(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack()
    stack.listen(80, 4)

    def explode(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr("userstack.stack.stack.Connection.open_passive", explode)
    stack.receive_packet(packet(seg(40000, 80, SYN, seq=5)), 0.0)
    assert stack.counters.internal_errors == 1
    assert stack.take_packets() == []
    assert [r.state for r in stack.connections(0.0)] == [State.LISTEN]


def _server_in_time_wait() -> tuple[Stack, Stack, int, SeqNum]:
    """A server that closed first and sits in TIME-WAIT; the client's port and the
    server's RCV.NXT for that connection. Without timestamps: these are RFC 1122 4.2.2.13's
    rules (with them RFC 6191 decides: tests/stack/test_stack_time_wait.py)."""
    server, client, conn, peer = connected_pair(timestamps=False)
    peer.close(0.0)
    shuttle(client, server, 0.0)
    conn.close(0.0)
    shuttle(client, server, 0.0)
    assert [r.state for r in server.connections(0.0) if r.remote.port] == [State.TIME_WAIT]
    server.take_events()
    rcv_nxt = peer.info(0.0).rcv_nxt
    assert rcv_nxt is not None
    return server, client, conn.local.port, SeqNum(rcv_nxt)


def test_new_syn_beyond_rcv_nxt_takes_over_a_time_wait_four_tuple() -> None:
    server, _client, port, rcv_nxt = _server_in_time_wait()
    old = next(r for r in server.connections(0.0) if r.remote.port == port)
    server.receive_packet(packet(seg(port, 80, SYN, seq=rcv_nxt.value + 100_000)), 0.5)
    [syn_ack] = replies(server)
    assert syn_ack.flags == SYN | ACK
    assert syn_ack.ack == SeqNum(rcv_nxt.value + 100_001)
    assert syn_ack.seq > SeqNum(old.snd_nxt)  # RFC 1122 4.2.2.13 (a)
    assert server.counters.time_wait_reuses == 1
    [row] = [r for r in server.connections(0.5) if r.remote.port == port]
    assert row.state is State.SYN_RECEIVED
    assert any(type(e) is Closed for _, evs in server.take_events() for e in evs)


def test_old_syn_in_time_wait_gets_a_challenge_ack_not_a_new_connection() -> None:
    server, _client, port, rcv_nxt = _server_in_time_wait()
    server.receive_packet(packet(seg(port, 80, SYN, seq=rcv_nxt.value - 1)), 0.5)
    [challenge] = replies(server)
    assert challenge.flags == ACK and challenge.ack == rcv_nxt  # RFC 5961 4
    assert server.counters.time_wait_reuses == 0
    [row] = [r for r in server.connections(0.5) if r.remote.port == port]
    assert row.state is State.TIME_WAIT
