"""Retransmission (RFC 6298), retry limits (RFC 1122 4.2.3.5), Karn's algorithm."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tcp_harness import (
    ACK,
    IRS,
    ISS,
    LOCAL,
    MSS,
    NODELAY,
    PSH,
    REMOTE,
    RST,
    SYN,
    established,
    events_of,
    expect,
    expect_nothing,
    out,
    seg,
    send,
)

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import Closed, Error, ErrorReason
from userstack.tcp.info import TimerKind
from userstack.tcp.rtt import RttEstimator
from userstack.tcp.state import State
from userstack.wire.tcp import TcpOptions

CFG = replace(NODELAY, max_retries=4)


def test_estimator_first_and_later_samples() -> None:
    est = RttEstimator(TcpConfig(rto_initial=1.0, rto_min=0.2, rto_max=60.0))
    est.sample(0.1)  # (2.2): SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR
    assert (est.srtt, est.rttvar, est.rto) == (0.1, 0.05, pytest.approx(0.3))
    est.sample(0.3)  # (2.3)
    assert est.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert est.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)


def test_estimator_min_max_and_backoff() -> None:
    est = RttEstimator(TcpConfig(rto_initial=1.0, rto_min=1.0, rto_max=4.0))
    est.sample(0.01)
    assert est.rto == 1.0  # (2.4) minimum
    for expected in (2.0, 4.0, 4.0):  # (5.5) doubling, (2.5) maximum
        est.back_off()
        assert est.rto == expected
    est.sample(0.01)  # a new sample undoes the backoff
    assert est.rto == 1.0


def test_data_retransmitted_with_doubling_rto_until_limit() -> None:
    conn = established(CFG)
    conn.send(b"hello", 10.0)
    expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"hello")])
    assert conn.next_deadline() == 11.0  # (5.1) RTO = 1 s
    assert conn.info(10.0).timer is TimerKind.RETRANSMIT
    t = 11.0
    for n, rto in enumerate((2.0, 4.0, 8.0, 16.0), start=1):
        expect_nothing(conn, at=t - 0.001)
        conn.on_timer(t)
        expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"hello")])  # (5.4)
        assert conn.info(t).retransmits == n
        assert conn.next_deadline() == t + rto  # (5.5), (5.6)
        t += rto
    conn.on_timer(t)  # the fifth expiry: R2 reached
    assert conn.state is State.CLOSED
    expect(conn, [out(ISS + 6, None, RST)])
    assert events_of(conn, Error, Closed) == [Error(ErrorReason.TIMED_OUT), Closed()]


def test_ack_stops_timer_and_samples_rtt() -> None:
    conn = established(CFG)
    conn.send(b"a" * 100, 0.0)
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 101), at=0.25)
    assert conn.next_deadline() is None  # (5.2)
    # the handshake at t=0 gave SRTT 0; (2.3): SRTT = 7/8 * 0 + 1/8 * 0.25
    assert conn.info(0.25).srtt == pytest.approx(0.25 / 8)


def test_partial_ack_restarts_timer() -> None:
    conn = established(CFG)
    conn.send(b"a" * 2000, 0.0)
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 1001), at=0.5)
    assert conn.next_deadline() == 1.5  # (5.3)


def test_karn_no_sample_from_retransmission() -> None:
    conn = established(CFG)
    conn.send(b"a" * 100, 0.0)
    conn.on_timer(1.0)
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 101), at=1.1)
    info = conn.info(1.1)
    assert info.srtt == 0.0  # still the handshake's sample
    assert info.rto == 2.0  # the backed-off RTO stays until a valid sample
    assert info.retransmits == 0


def test_timeout_goes_back_to_snd_una_in_slow_start() -> None:
    conn = established(CFG, peer_window=20000)
    conn.send(b"x" * 3000, 0.0)
    assert len(conn.take_outgoing()) == 3  # IW = 3 * 1000
    conn.on_timer(1.0)
    # RFC 5681: ssthresh = max(FlightSize / 2, 2*SMSS), cwnd = 1 SMSS: one segment
    expect(conn, [out(ISS + 1, IRS + 1, payload=b"x" * 1000)])
    info = conn.info(1.0)
    assert (info.cwnd, info.ssthresh) == (MSS, 2 * MSS)
    assert conn.tcb.snd_nxt == ISS + 3001  # SND.NXT never moves back
    send(conn, seg(IRS + 1, ISS + 1001), at=1.2)
    # slow start: cwnd 2000, so the next two segments are resent
    got = conn.take_outgoing()
    assert [s.seq - ISS for s in got] == [1001, 2001]


def test_syn_received_retry_limit_sends_rst() -> None:
    cfg = TcpConfig(mss=MSS, synack_retries=1)
    conn = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    send(conn, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    conn.take_outgoing()
    conn.on_timer(1.0)
    expect(conn, [out(ISS, IRS + 1, SYN | ACK)])
    conn.on_timer(3.0)
    expect(conn, [out(ISS + 1, None, RST)])
    assert conn.state is State.CLOSED


def test_default_synack_retries_give_up_at_63_seconds() -> None:
    """RFC 4987 3.2: a half-open TCB lives through 5 SYN,ACK retransmissions (Linux's
    tcp_synack_retries), at 1, 3, 7, 15 and 31 s, and is dropped at 63 s."""
    conn = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=TcpConfig(mss=MSS))
    send(conn, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    conn.take_outgoing()
    sent_at = []
    while conn.state is State.SYN_RECEIVED:
        at = conn.next_deadline()
        assert at is not None
        conn.on_timer(at)
        if any(s.flags == SYN | ACK for s in conn.take_outgoing()):
            sent_at.append(at)
    assert sent_at == [1.0, 3.0, 7.0, 15.0, 31.0] and at == 63.0
    assert conn.state is State.CLOSED


def test_default_r2_lasts_at_least_100_seconds() -> None:
    """RFC 9293 3.8.3 SHLD-11: with the defaults (15 retransmissions, the RTO doubling
    from 1 s to the 60 s cap) an unanswered segment is given up on after 663 s."""
    conn = established(TcpConfig(mss=MSS))
    conn.send(b"x", 0.0)
    resent = 0
    while conn.state is State.ESTABLISHED:
        at = conn.next_deadline()
        assert at is not None
        conn.on_timer(at)
        resent += sum(1 for s in conn.take_outgoing() if s.payload == b"x")
    assert resent == 1 + 15 and at == 1 + 2 + 4 + 8 + 16 + 32 + 10 * 60 == 663
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]
