"""ICMP errors at one connection (RFC 9293 3.9.2.1, RFC 1122 4.2.3.9): which are
believed (RFC 5927 4.1), soft versus hard, and path MTU discovery (RFC 1191)."""

from __future__ import annotations

import itertools

import pytest
from tcp_harness import (
    IRS,
    ISS,
    MSS,
    RST,
    SYN,
    established,
    events_of,
    expect_nothing,
    seg,
    send,
)
from tcp_harness import NODELAY as CFG

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import Closed, Error, ErrorReason
from userstack.tcp.icmp_errors import (
    PACKET_TOO_BIG,
    Severity,
    classify,
    mss_for_mtu,
    path_mtu,
)
from userstack.tcp.state import State
from userstack.wire.tcp import TcpOptions

HOST_UNREACHABLE = classify(3, 1)
PORT_UNREACHABLE = classify(3, 3)
assert HOST_UNREACHABLE is not None and PORT_UNREACHABLE is not None


def with_flight(config: TcpConfig = CFG, *, sack: bool = False) -> Connection:
    """ESTABLISHED with four 1000-byte segments in flight, ISS+1 .. ISS+4001."""
    opts = TcpOptions(mss=MSS, sack_permitted=sack)
    conn = established(config, peer_window=60000, peer_options=opts)
    conn.send(b"d" * 4000, 0.0)
    assert [len(s.payload) for s in conn.take_outgoing()] == [1000] * 4
    return conn


# ---- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("icmp_type", "code", "severity", "reason"),
    [
        (3, 0, Severity.SOFT, ErrorReason.NETWORK_UNREACHABLE),
        (3, 1, Severity.SOFT, ErrorReason.HOST_UNREACHABLE),
        (3, 2, Severity.HARD, ErrorReason.PROTOCOL_UNREACHABLE),
        (3, 3, Severity.HARD, ErrorReason.CONNECTION_REFUSED),
        (3, 4, Severity.PACKET_TOO_BIG, None),
        (3, 5, Severity.SOFT, ErrorReason.HOST_UNREACHABLE),
        (3, 11, Severity.SOFT, ErrorReason.NETWORK_UNREACHABLE),
        (3, 12, Severity.SOFT, ErrorReason.HOST_UNREACHABLE),
        (3, 13, Severity.HARD, ErrorReason.HOST_UNREACHABLE),
        (11, 0, Severity.SOFT, ErrorReason.HOST_UNREACHABLE),
        (12, 0, Severity.SOFT, ErrorReason.PROTOCOL_ERROR),
    ],
)
def test_classification_follows_rfc_1122_and_rfc_5461(
    icmp_type: int, code: int, severity: Severity, reason: ErrorReason | None
) -> None:
    kind = classify(icmp_type, code)
    assert kind is not None
    assert (kind.severity, kind.reason) == (severity, reason)


def test_source_quench_and_unknown_codes_are_not_errors_for_tcp() -> None:
    """RFC 6633 / MUST-55: Source Quench is ignored; so are codes TCP does not know."""
    assert classify(4, 0) is None
    assert classify(3, 16) is None
    assert classify(5, 0) is None  # redirect: not an error for TCP


# ---- RFC 5927 4.1: only errors about a segment in flight ----------------------------------


@pytest.mark.parametrize("offset", [0, 4001, 5000, -100])
def test_error_outside_snd_una_snd_nxt_is_refused_and_changes_nothing(offset: int) -> None:
    """SND.UNA = ISS+1, SND.NXT = ISS+4001: ISS itself, SND.NXT and beyond are refused."""
    conn = with_flight()
    assert PORT_UNREACHABLE is not None
    assert not conn.on_icmp_error(PORT_UNREACHABLE, ISS + offset, 0.1)
    assert not conn.on_icmp_error(PACKET_TOO_BIG, ISS + offset, 0.1, mtu=576)
    assert conn.info(0.1).soft_error is None and conn.info(0.1).mss == MSS
    assert conn.take_outgoing() == [] and events_of(conn) == []


def test_error_in_time_wait_is_refused(time_wait: Connection) -> None:
    """Everything acknowledged: SND.UNA = SND.NXT, no sequence number is acceptable."""
    assert HOST_UNREACHABLE is not None
    tcb = time_wait.tcb
    assert not time_wait.on_icmp_error(HOST_UNREACHABLE, tcb.snd_una, 1.0)
    assert not time_wait.on_icmp_error(HOST_UNREACHABLE, tcb.snd_una - 1, 1.0)


# ---- soft errors: remembered, reported on timeout, never abort -----------------------------


def test_soft_error_does_not_abort_and_a_timeout_reports_it() -> None:
    """MUST-56: no abort; MUST-47 / SHLD-25: the application learns it, as Linux reports
    sk_err_soft when the connection times out."""
    conn = with_flight(TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False, max_retries=2))
    assert HOST_UNREACHABLE is not None
    assert conn.on_icmp_error(HOST_UNREACHABLE, ISS + 1001, 0.5)
    assert conn.state is State.ESTABLISHED and events_of(conn) == []
    assert conn.take_outgoing() == []  # nothing resent for a soft error
    assert conn.info(0.5).soft_error == "no route to host"
    for t in (1.0, 3.0, 7.0):  # RTO 1 s doubling: two retransmissions, then give up
        conn.on_timer(t)
    assert events_of(conn, Error, Closed) == [Error(ErrorReason.HOST_UNREACHABLE), Closed()]


def test_a_segment_from_the_peer_clears_the_soft_error() -> None:
    conn = with_flight(TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False, max_retries=1))
    assert HOST_UNREACHABLE is not None
    conn.on_icmp_error(HOST_UNREACHABLE, ISS + 1, 0.1)
    send(conn, seg(IRS + 1, ISS + 1001), 0.2)  # the path works after all
    assert conn.info(0.2).soft_error is None
    conn.on_timer(1.2)
    conn.on_timer(3.2)
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]


def test_soft_error_in_syn_sent_waits_for_the_syn_timeout(syn_sent: Connection) -> None:
    """RFC 5461: a soft error does not abort a connection being established either."""
    assert HOST_UNREACHABLE is not None
    assert syn_sent.on_icmp_error(HOST_UNREACHABLE, ISS, 0.1)
    assert syn_sent.state is State.SYN_SENT
    t = 0.0
    while syn_sent.state is State.SYN_SENT:
        deadline = syn_sent.next_deadline()
        assert deadline is not None
        t = deadline
        syn_sent.on_timer(t)
    assert events_of(syn_sent, Error) == [Error(ErrorReason.HOST_UNREACHABLE)]


# ---- hard errors: abort before synchronization, soft after ---------------------------------


def test_port_unreachable_in_syn_sent_refuses_the_connection(syn_sent: Connection) -> None:
    """SHLD-26 (RFC 1122 4.2.3.9): abort; ECONNREFUSED as Linux; no RST to anybody."""
    assert PORT_UNREACHABLE is not None
    assert syn_sent.on_icmp_error(PORT_UNREACHABLE, ISS, 0.1)
    assert syn_sent.state is State.CLOSED
    assert events_of(syn_sent, Error, Closed) == [Error(ErrorReason.CONNECTION_REFUSED), Closed()]
    assert syn_sent.take_outgoing() == []


def test_hard_error_in_syn_received_aborts(syn_received: Connection) -> None:
    protocol_unreachable = classify(3, 2)
    assert protocol_unreachable is not None
    assert syn_received.on_icmp_error(protocol_unreachable, ISS, 0.1)
    assert syn_received.state is State.CLOSED
    assert events_of(syn_received, Error) == [Error(ErrorReason.PROTOCOL_UNREACHABLE)]
    assert [s for s in syn_received.take_outgoing() if s.flags & RST] == []


def test_hard_error_in_established_is_treated_as_soft() -> None:
    """RFC 5927 5.2 (and Linux): one unauthenticated packet must not kill a synchronized
    connection; the error is only remembered."""
    conn = with_flight()
    assert PORT_UNREACHABLE is not None
    assert conn.on_icmp_error(PORT_UNREACHABLE, ISS + 1, 0.1)
    assert conn.state is State.ESTABLISHED and events_of(conn) == []
    assert conn.info(0.1).soft_error == "connection refused"


# ---- RFC 1191: path MTU ---------------------------------------------------------------------


def test_path_mtu_from_the_message_or_the_plateau_table() -> None:
    assert path_mtu(1400, 1500) == 1400
    assert path_mtu(0, 1500) == 1492  # RFC 1191 7: the plateau below the datagram's length
    assert path_mtu(0, 1006) == 508
    assert path_mtu(0, 40) == 68
    assert path_mtu(20, 1500) == 68  # never below 68 (RFC 1191 3)
    assert mss_for_mtu(1400, 1460) == 1360
    assert mss_for_mtu(1500, 1000) == 1000  # never raised
    assert mss_for_mtu(20, 1460) == 28


@pytest.mark.parametrize("sack", [False, True])
def test_fragmentation_needed_lowers_mss_and_resends_at_once(sack: bool) -> None:
    """RFC 1191 6.5: the lost segments go again now, cut to the new MSS, not after an RTO."""
    conn = with_flight(sack=sack)
    cwnd = conn.info(0.0).cwnd
    assert conn.on_icmp_error(PACKET_TOO_BIG, ISS + 1, 0.05, mtu=640)
    assert conn.info(0.05).mss == 600
    resent = conn.take_outgoing()
    assert resent, "nothing resent at once"
    assert all(len(s.payload) <= 600 for s in resent)
    # contiguous from SND.UNA: the whole flight again, at the new size (with SACK each
    # old segment is cut up on its own: 600 + 400 bytes)
    ends = [(s.seq - ISS, s.seq - ISS + len(s.payload)) for s in resent]
    assert ends[0][0] == 1 and all(a[1] == b[0] for a, b in itertools.pairwise(ends))
    assert ends[-1][1] == 4001
    assert conn.info(0.05).cwnd == cwnd  # not a congestion signal: no slow start
    assert events_of(conn, Error) == []
    # later data is segmented at the new MSS too
    send(conn, seg(IRS + 1, ISS + 4001, window=60000), 0.1)
    conn.take_outgoing()
    conn.send(b"e" * 2000, 0.1)
    assert max(len(s.payload) for s in conn.take_outgoing()) == 600


def test_fragmentation_needed_never_raises_the_mss() -> None:
    conn = with_flight()
    assert conn.on_icmp_error(PACKET_TOO_BIG, ISS + 1, 0.05, mtu=9000)
    assert conn.info(0.05).mss == MSS
    assert conn.take_outgoing() == []


def test_fragmentation_needed_for_our_syn_changes_nothing(syn_sent: Connection) -> None:
    assert syn_sent.on_icmp_error(PACKET_TOO_BIG, ISS, 0.1, mtu=68)
    assert syn_sent.state is State.SYN_SENT
    expect_nothing(syn_sent)
    send(syn_sent, seg(IRS, ISS + 1, SYN, options=TcpOptions(mss=MSS)), 0.2)
    assert syn_sent.info(0.2).mss == MSS
