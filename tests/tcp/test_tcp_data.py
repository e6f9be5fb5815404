"""Data transfer: segmentation, reassembly, windows (RFC 9293 3.8.6), delayed ACKs
(RFC 1122 4.2.3.2, RFC 5681 4.2), Nagle (3.7.4), zero-window probes (3.8.6.1)."""

from __future__ import annotations

import pytest
from tcp_harness import (
    ACK,
    IRS,
    ISS,
    MSS,
    NODELAY,
    PSH,
    RST,
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
from userstack.tcp.events import DataReadable, Error, ErrorReason, SendSpace
from userstack.tcp.info import TimerKind
from userstack.tcp.state import State


def test_segmentation_by_mss_and_iw() -> None:
    conn = established(NODELAY, peer_window=20000)
    assert conn.send(b"z" * 5500, 0.0) == 5500
    got = conn.take_outgoing()
    # IW = 4 * SMSS for SMSS 1000 (RFC 5681 3.1, SMSS <= 1095)
    assert [(s.seq - ISS, len(s.payload)) for s in got] == [
        (1, 1000), (1001, 1000), (2001, 1000), (3001, 1000)
    ]
    assert all(s.ack == IRS + 1 for s in got)
    send(conn, seg(IRS + 1, ISS + 2001, window=20000))
    got = conn.take_outgoing()
    assert [(s.seq - ISS, len(s.payload)) for s in got] == [(4001, 1000), (5001, 500)]
    assert got[-1].flags == PSH | ACK


def test_send_buffer_is_bounded() -> None:
    conn = established(TcpConfig(mss=MSS, send_buffer=3000, delayed_ack=0.0), peer_window=0)
    assert conn.send_space == 3000
    assert conn.send(b"a" * 5000, 0.0) == 3000
    assert conn.send(b"b", 0.0) == 0
    assert conn.send_space == 0


def test_sender_honours_peer_window() -> None:
    conn = established(NODELAY, peer_window=2000)
    conn.send(b"w" * 5000, 0.0)
    got = conn.take_outgoing()
    assert [len(s.payload) for s in got] == [1000, 1000]
    send(conn, seg(IRS + 1, ISS + 1501, window=2000))
    assert [len(s.payload) for s in conn.take_outgoing()] == [1000]  # up to 3501
    send(conn, seg(IRS + 1, ISS + 3001, window=2000))
    assert [len(s.payload) for s in conn.take_outgoing()] == [1000, 1000]
    assert conn.tcb.snd_nxt == ISS + 5001
    assert SendSpace() in events_of(conn)


def test_peer_shrinking_its_window_is_survived() -> None:
    """RFC 9293 3.8.6 MUST-34, SHLD-15: the peer moves its right edge left, behind data
    we already sent. The usable window is negative: nothing new goes out, nothing
    breaks, and sending resumes once the edge is past SND.NXT again."""
    conn = established(NODELAY, peer_window=4000)
    conn.send(b"w" * 6000, 0.0)
    assert [s.seq - ISS for s in conn.take_outgoing()] == [1, 1001, 2001, 3001]
    send(conn, seg(IRS + 1, ISS + 1001, window=1000))  # right edge 2001 < SND.NXT 4001
    assert conn.take_outgoing() == [] and conn.state is State.ESTABLISHED
    send(conn, seg(IRS + 1, ISS + 3001, window=3000))  # edge 6001: 2000 usable
    assert [s.seq - ISS for s in conn.take_outgoing()] == [4001, 5001]


def test_data_behind_a_window_shrunk_to_zero_does_not_time_out() -> None:
    """SHLD-17 (the zero-window part): once the peer closes its window on data already
    sent, the retransmission timer stops and answered persist probes keep the
    connection, well past the max_retries (2) RTOs that would otherwise end it."""
    cfg = TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False, max_retries=2)
    conn = established(cfg, peer_window=4000)
    conn.send(b"w" * 2000, 0.0)
    assert len(conn.take_outgoing()) == 2
    send(conn, seg(IRS + 1, ISS + 1, window=0), at=0.1)
    assert conn.info(0.1).timer is TimerKind.PERSIST
    t = 0.1
    while t < 100.0:
        t = conn.next_deadline() or 0.0
        conn.on_timer(t)
        assert [len(s.payload) for s in conn.take_outgoing()] == [1]  # a probe, no RTO
        send(conn, seg(IRS + 1, ISS + 1, window=0), at=t)  # answered, still closed
    assert conn.state is State.ESTABLISHED


def test_window_update_from_peer_uses_wl1_wl2() -> None:
    conn = established(NODELAY, peer_window=1000)
    send(conn, seg(IRS + 1, ISS + 1, window=3000))
    assert conn.tcb.snd_wnd == 3000 and conn.tcb.snd_wl1 == IRS + 1
    # an older segment (SND.WL1 > SEG.SEQ) must not update the window
    send(conn, seg(IRS, ISS + 1, window=10))
    assert conn.tcb.snd_wnd == 3000


def test_receive_in_order_and_window_shrinks(est: Connection) -> None:
    send(est, seg(IRS + 1, ISS + 1, payload=b"a" * 1000))
    expect(est, [out(ISS + 1, IRS + 1001, window=7000)])
    assert events_of(est) == [DataReadable()]
    assert est.readable == 1000
    assert est.tcb.rcv_wnd == 7000


def test_out_of_order_reassembly_with_overlaps_and_duplicates(est: Connection) -> None:
    send(est, seg(IRS + 11, ISS + 1, payload=b"klmnop"))  # ahead: held, ACK at once
    expect(est, [out(ISS + 1, IRS + 1)])
    send(est, seg(IRS + 6, ISS + 1, payload=b"fghijkl"))  # overlaps the held piece
    expect(est, [out(ISS + 1, IRS + 1)])
    send(est, seg(IRS + 11, ISS + 1, payload=b"klmnop"))  # a duplicate
    expect(est, [out(ISS + 1, IRS + 1)])
    assert est.readable == 0
    send(est, seg(IRS + 1, ISS + 1, payload=b"abcdefg"))  # fills the gap
    expect(est, [out(ISS + 1, IRS + 17)])
    assert est.receive(100, 0.0) == b"abcdefghijklmnop"
    send(est, seg(IRS + 10, ISS + 1, payload=b"jklmnopq"))  # partly old
    expect(est, [out(ISS + 1, IRS + 18)])
    assert est.receive(100, 0.0) == b"q"


def test_data_beyond_window_is_trimmed(est: Connection) -> None:
    send(est, seg(IRS + 1, ISS + 1, payload=b"x" * 9000))
    expect(est, [out(ISS + 1, IRS + 8001, window=0)])
    assert est.readable == 8000


def test_segment_entirely_beyond_window_is_acked_and_dropped(est: Connection) -> None:
    send(est, seg(IRS + 9000, ISS + 1, payload=b"far"))
    expect(est, [out(ISS + 1, IRS + 1)])
    assert est.readable == 0


def test_receiver_sws_window_update_only_after_real_growth(est: Connection) -> None:
    """RFC 9293 3.8.6.2.2: announce only when the window grows by min(buffer/2, MSS)."""
    send(est, seg(IRS + 1, ISS + 1, payload=b"x" * 8000))
    expect(est, [out(ISS + 1, IRS + 8001, window=0)])
    est.receive(999, 0.0)  # less than an MSS: no update
    expect_nothing(est)
    est.receive(1, 0.0)  # 1000 = min(4000, MSS): update
    expect(est, [out(ISS + 1, IRS + 8001, window=1000)])
    est.receive(500, 0.0)
    expect_nothing(est)
    # the peer's probe learns the window we offered, not the 1500 we have
    send(est, seg(IRS + 8001, ISS + 1, payload=b"y"))
    expect(est, [out(ISS + 1, IRS + 8002, window=999)])


def test_zero_window_probes_with_backoff() -> None:
    conn = established(NODELAY, peer_window=0)
    conn.send(b"abc", 0.0)
    expect_nothing(conn)
    assert conn.info(0.0).timer is TimerKind.PERSIST
    t = 0.0
    for interval in (1.0, 2.0, 4.0, 8.0):
        assert conn.next_deadline() == t + interval
        expect_nothing(conn, at=t + interval - 0.001)
        t += interval
        conn.on_timer(t)
        expect(conn, [out(ISS + 1, IRS + 1, ACK, payload=b"a")])  # one octet
        send(conn, seg(IRS + 1, ISS + 1, window=0), at=t)  # still closed
        expect_nothing(conn)
    # probes are answered, so the connection never times out (RFC 1122 4.2.2.17)
    send(conn, seg(IRS + 1, ISS + 1, window=5000), at=t + 0.5)
    expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"abc")])
    assert conn.info(t + 0.5).timer is TimerKind.RETRANSMIT


def test_zero_window_probes_unanswered_time_out() -> None:
    """Probes that draw no reply at all: after max_retries of them the connection is
    given up like any other retransmission (R2, RFC 1122 4.2.3.5); MUST-37 only forbids
    it while the probes are answered (test above)."""
    cfg = TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False, max_retries=3)
    conn = established(cfg, peer_window=0)
    conn.send(b"abc", 0.0)
    t = 0.0
    for interval in (1.0, 2.0, 4.0):
        t += interval
        assert conn.next_deadline() == t
        conn.on_timer(t)
        expect(conn, [out(ISS + 1, IRS + 1, ACK, payload=b"a")])
    assert conn.next_deadline() == t + 8.0
    conn.on_timer(t + 8.0)
    assert conn.state is State.CLOSED
    expect(conn, [out(ISS + 2, None, RST)])  # <SEQ=SND.NXT>: past the probe's octet
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]


def test_zero_window_probe_accepted_by_peer() -> None:
    conn = established(NODELAY, peer_window=0)
    conn.send(b"abc", 0.0)
    conn.on_timer(1.0)
    expect(conn, [out(ISS + 1, IRS + 1, payload=b"a")])
    send(conn, seg(IRS + 1, ISS + 2, window=1000), at=1.1)
    expect(conn, [out(ISS + 2, IRS + 1, PSH | ACK, payload=b"bc")])


def test_sender_sws_avoidance_and_override_timer() -> None:
    """RFC 9293 3.8.6.2.1: no tiny segment while more is queued than the window allows,
    unless it is at least half the largest window seen; the override timer sends it."""
    conn = established(NODELAY, peer_window=3000)
    conn.send(b"s" * 4000, 0.0)
    assert len(conn.take_outgoing()) == 3  # the window allows 3000
    send(conn, seg(IRS + 1, ISS + 3001, window=1100))  # SND.UNA+SND.WND = 4101
    expect(conn, [out(ISS + 3001, IRS + 1, PSH | ACK, payload=b"s" * 1000)])
    conn.send(b"t" * 500, 0.0)
    send(conn, seg(IRS + 1, ISS + 4001, window=100))  # only 100 usable, 500 queued
    expect_nothing(conn)
    assert conn.info(0.0).timer is TimerKind.PERSIST
    conn.on_timer(1.0)
    expect(conn, [out(ISS + 4001, IRS + 1, ACK, payload=b"t" * 100)])


def test_nagle_holds_small_segments_until_ack() -> None:
    conn = established(TcpConfig(mss=MSS, delayed_ack=0.0))
    conn.send(b"a", 0.0)
    expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"a")])
    conn.send(b"b", 0.0)
    conn.send(b"c", 0.0)
    expect_nothing(conn)
    send(conn, seg(IRS + 1, ISS + 2))
    expect(conn, [out(ISS + 2, IRS + 1, PSH | ACK, payload=b"bc")])


def test_nodelay_sends_at_once() -> None:
    conn = established(TcpConfig(mss=MSS, delayed_ack=0.0))
    conn.send(b"a", 0.0)
    conn.send(b"b", 0.0)
    assert len(conn.take_outgoing()) == 1
    conn.set_nodelay(True, 0.0)
    expect(conn, [out(ISS + 2, IRS + 1, PSH | ACK, payload=b"b")])
    conn.send(b"c", 0.0)
    expect(conn, [out(ISS + 3, IRS + 1, PSH | ACK, payload=b"c")])


DELACK = TcpConfig(mss=MSS, recv_buffer=64000, delayed_ack=0.2)


def test_delayed_ack_deadline() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"x" * 10), at=1.0)
    expect_nothing(conn)
    assert conn.next_deadline() == pytest.approx(1.2)
    assert conn.info(1.0).timer is TimerKind.DELAYED_ACK
    expect_nothing(conn, at=1.19)
    conn.on_timer(1.2)
    expect(conn, [out(ISS + 1, IRS + 11)])
    assert conn.next_deadline() is None


def test_delayed_ack_every_second_segment() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"x" * 1000))
    expect_nothing(conn)
    send(conn, seg(IRS + 1001, ISS + 1, payload=b"x" * 1000))
    expect(conn, [out(ISS + 1, IRS + 2001)])
    assert conn.next_deadline() is None


def test_delayed_ack_immediate_for_out_of_order() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1001, ISS + 1, payload=b"x" * 1000))
    expect(conn, [out(ISS + 1, IRS + 1)])
    send(conn, seg(IRS + 1, ISS + 1, payload=b"x" * 1000))  # fills the gap: at once too
    expect(conn, [out(ISS + 1, IRS + 2001)])


def test_delayed_ack_piggybacks_on_data() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"q"), at=1.0)
    conn.send(b"reply", 1.05)
    expect(conn, [out(ISS + 1, IRS + 2, PSH | ACK, payload=b"reply")])
    assert conn.info(1.05).timer is TimerKind.RETRANSMIT
