"""Congestion control (RFC 5681) and NewReno recovery (RFC 6582), through a connection."""

from __future__ import annotations

from tcp_harness import ACK, IRS, ISS, NODELAY, PSH, established, expect, out, seg, send

from userstack.tcp.congestion import Reno, initial_window
from userstack.tcp.connection import Connection

CFG = NODELAY
BIG = 60000


def test_initial_window_rfc_5681() -> None:
    assert initial_window(1460) == 4380
    assert initial_window(1000) == 4000
    assert initial_window(2500) == 5000


def test_slow_start_then_congestion_avoidance() -> None:
    cc = Reno(1000)
    cc.ssthresh = 6000
    cc.on_ack(1000, 0.0, rtt=None)
    assert cc.cwnd == 5000  # +min(acked, SMSS) (RFC 5681 (2))
    cc.on_ack(3000, 0.0, rtt=None)
    assert cc.cwnd == 6000  # byte counting capped at one SMSS per ACK
    cc.on_ack(1000, 0.0, rtt=None)
    assert cc.cwnd == 6000 + 1000 * 1000 // 6000  # (3): SMSS*SMSS/cwnd


def _flight(conn: Connection, n: int) -> list[int]:
    conn.send(b"d" * n, 0.0)
    return [s.seq - ISS for s in conn.take_outgoing()]


def test_fast_retransmit_and_newreno_recovery() -> None:
    conn = established(CFG, peer_window=BIG)
    conn.sender.cc.cwnd = 6000  # six segments in flight: 1, 1001, ..., 5001
    assert _flight(conn, 6000) == [1, 1001, 2001, 3001, 4001, 5001]
    # segments 1001 and 3001 are lost; the rest make duplicate ACKs for 1001
    send(conn, seg(IRS + 1, ISS + 1001, window=BIG))
    assert conn.take_outgoing() == []  # (cwnd grew, but nothing more is queued)
    for _ in range(2):
        send(conn, seg(IRS + 1, ISS + 1001, window=BIG))
        assert conn.take_outgoing() == []
    send(conn, seg(IRS + 1, ISS + 1001, window=BIG))  # the third duplicate
    expect(conn, [out(ISS + 1001, IRS + 1, payload=b"d" * 1000)])  # fast retransmit
    info = conn.info(0.0)
    # FlightSize 5000 -> ssthresh 2500; cwnd = ssthresh + 3 SMSS (RFC 5681 3.2 (2)-(3))
    assert (info.ssthresh, info.cwnd) == (2500, 5500)
    assert conn.sender.recovery.in_recovery and conn.sender.recovery.recover == ISS + 6001
    # a partial ACK (up to the second hole): retransmit it at once (RFC 6582 3.2 (5))
    send(conn, seg(IRS + 1, ISS + 3001, window=BIG))
    expect(conn, [out(ISS + 3001, IRS + 1, payload=b"d" * 1000)])
    assert conn.sender.recovery.in_recovery
    # the full ACK ends recovery: cwnd = min(ssthresh, FlightSize + SMSS)
    send(conn, seg(IRS + 1, ISS + 6001, window=BIG))
    assert not conn.sender.recovery.in_recovery
    assert conn.info(0.0).cwnd == 2000  # min(2500, max(FlightSize 0, SMSS) + SMSS)


def test_timeout_resets_window_and_holds_ssthresh_on_repeat() -> None:
    cc = Reno(1000)
    cc.on_rto(8000, 0.0, first=True)
    assert (cc.cwnd, cc.ssthresh) == (1000, 4000)
    cc.on_rto(8000, 0.0, first=False)
    assert (cc.cwnd, cc.ssthresh) == (1000, 4000)
    cc2 = Reno(1000)
    cc2.on_rto(1000, 0.0, first=True)
    assert cc2.ssthresh == 2000  # max(FlightSize/2, 2*SMSS)
    cc2.on_loss(9000, 0.0)
    assert (cc2.cwnd, cc2.ssthresh) == (4500, 4500)  # RFC 5681 (4)


def test_window_update_is_not_a_duplicate_ack() -> None:
    conn = established(CFG, peer_window=BIG)
    _flight(conn, 3000)
    for w in (BIG - 1, BIG - 2, BIG - 3):
        send(conn, seg(IRS + 1, ISS + 1, window=w))
    assert conn.sender.recovery.dupacks == 0


def test_limited_transmit_sends_new_data_on_first_two_dupacks() -> None:
    """RFC 3042: with a small window, two duplicate ACKs each release one new segment."""
    conn = established(CFG, peer_window=BIG)
    conn.sender.cc.cwnd = 2000
    assert _flight(conn, 5000) == [1, 1001]
    send(conn, seg(IRS + 1, ISS + 1, window=BIG))  # first duplicate
    expect(conn, [out(ISS + 2001, IRS + 1, payload=b"d" * 1000)])
    send(conn, seg(IRS + 1, ISS + 1, window=BIG))  # second
    expect(conn, [out(ISS + 3001, IRS + 1, payload=b"d" * 1000)])
    assert conn.info(0.0).cwnd == 2000  # cwnd itself is unchanged
    send(conn, seg(IRS + 1, ISS + 1, window=BIG))  # third: fast retransmit
    # then cwnd = ssthresh + 3*SMSS = 2000 + 3000 lets the last new segment go too
    expect(conn, [
        out(ISS + 1, IRS + 1, payload=b"d" * 1000),
        out(ISS + 4001, IRS + 1, PSH | ACK, payload=b"d" * 1000),
    ])


def test_flight_size_of_the_reduction_leaves_out_limited_transmit() -> None:
    """RFC 5681 3.2 (2): "additional data sent in limited transmit MUST NOT be included"
    in the FlightSize that ssthresh halves: 10 segments in flight and 2 sent by Limited
    Transmit make ssthresh 5 segments, not 6 (and never more than cwnd allowed)."""
    conn = established(CFG, peer_window=BIG)
    conn.sender.cc.cwnd = 10_000
    assert len(_flight(conn, 14_000)) == 10
    for _ in range(3):
        send(conn, seg(IRS + 1, ISS + 1, window=BIG))
    assert conn.tcb.snd_nxt - conn.tcb.snd_una >= 12_000  # the two went out
    assert conn.sender.cc.ssthresh == 5_000


def test_only_the_first_partial_ack_restarts_the_timer() -> None:
    """RFC 6582 3.2 (5), the "Impatient" variant: with many holes, later partial ACKs
    leave the retransmission timer alone, so the RTO ends a slow recovery."""
    conn = established(CFG, peer_window=BIG)
    conn.sender.cc.cwnd = 6000
    assert _flight(conn, 6000) == [1, 1001, 2001, 3001, 4001, 5001]
    assert conn.next_deadline() == 1.0
    for _ in range(4):  # 1001, 3001 and 5001 were lost: an ACK, three duplicates
        send(conn, seg(IRS + 1, ISS + 1001, window=BIG), at=0.1)
    expect(conn, [out(ISS + 1001, IRS + 1, payload=b"d" * 1000)])  # fast retransmit
    send(conn, seg(IRS + 1, ISS + 3001, window=BIG), at=0.2)  # the first partial ACK
    expect(conn, [out(ISS + 3001, IRS + 1, payload=b"d" * 1000)])
    assert conn.next_deadline() == 1.2  # restarted: 0.2 + RTO
    send(conn, seg(IRS + 1, ISS + 5001, window=BIG), at=0.3)  # the second
    expect(conn, [out(ISS + 5001, IRS + 1, PSH | ACK, payload=b"d" * 1000)])
    assert conn.next_deadline() == 1.2  # not restarted
    send(conn, seg(IRS + 1, ISS + 6001, window=BIG), at=0.4)
    assert conn.next_deadline() is None and not conn.sender.recovery.in_recovery


def test_slow_start_restarts_after_an_idle_rto() -> None:
    """RFC 5681 4.1: after more than an RTO without sending, cwnd = min(IW, cwnd)."""
    conn = established(CFG, peer_window=BIG)
    assert _flight(conn, 4000) == [1, 1001, 2001, 3001]
    for k in range(1, 5):
        send(conn, seg(IRS + 1, ISS + 1 + 1000 * k, window=BIG), at=0.1)
    assert conn.info(0.1).cwnd == 8000  # slow start: one SMSS per ACK
    assert conn.info(0.1).rto == 1.0
    conn.send(b"d" * 1000, 1.0)  # 0.9 s idle: less than an RTO, cwnd kept
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 5001, window=BIG), at=1.1)
    assert conn.info(1.1).cwnd == 9000
    conn.send(b"d" * 9000, 2.5)  # 1.5 s idle: the restart window, four segments
    assert [s.seq - ISS for s in conn.take_outgoing()] == [5001, 6001, 7001, 8001]
    assert conn.info(2.5).cwnd == 4000
