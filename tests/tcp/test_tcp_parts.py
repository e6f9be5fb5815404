"""The core's parts on their own: buffers, keep-alive, info()."""

from __future__ import annotations

import pytest
from tcp_harness import (
    ACK,
    IRS,
    ISS,
    LOCAL,
    MSS,
    PSH,
    REMOTE,
    RST,
    established,
    events_of,
    expect,
    out,
    seg,
    send,
)

from userstack.tcp.buffers import (
    MAX_OUT_OF_ORDER_PIECES,
    NOTHING_QUEUED,
    ReceiveBuffer,
    SendBuffer,
)
from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import Error, ErrorReason
from userstack.tcp.info import TimerKind
from userstack.tcp.state import State
from userstack.tcp.syn_options import window_shift_for
from userstack.tcp.tcb import segment_acceptable
from userstack.wire.seq import SeqNum


def test_acceptability_table() -> None:
    """RFC 9293 3.10.7.4 first step, all four cases."""
    nxt = SeqNum(100)
    assert segment_acceptable(SeqNum(100), 0, nxt, 0)
    assert not segment_acceptable(SeqNum(101), 0, nxt, 0)
    assert segment_acceptable(SeqNum(149), 0, nxt, 50)
    assert not segment_acceptable(SeqNum(150), 0, nxt, 50)
    assert not segment_acceptable(SeqNum(100), 1, nxt, 0)
    assert segment_acceptable(SeqNum(90), 20, nxt, 50)  # straddles the left edge
    assert segment_acceptable(SeqNum(149), 20, nxt, 50)  # starts inside
    assert not segment_acceptable(SeqNum(80), 20, nxt, 50)  # all old


def test_send_buffer_bounded_and_slices() -> None:
    buf = SendBuffer()
    assert buf.write(b"0123456789abc", 10) == 10
    assert buf.write(b"x", 10) == 0
    assert buf.peek(3, 4) == b"3456"
    buf.consume(5)
    assert buf.peek(0, 100) == b"56789" and len(buf) == 5
    assert buf.write(b"abcdefgh", 10) == 5


def test_senders_with_nothing_queued_share_one_empty_buffer() -> None:
    """The shared NOTHING_QUEUED is never written to (issue 13): a sender takes its own
    buffer to write, and lets it go once everything in it is acknowledged."""
    with pytest.raises(AssertionError):
        NOTHING_QUEUED.write(b"x", 10)
    assert len(NOTHING_QUEUED) == 0
    conn = established()
    assert conn.sender.buffer is NOTHING_QUEUED and conn.send_space == conn.config.send_buffer
    conn.send(b"d" * 1000, 0.0)
    assert conn.sender.buffer is not NOTHING_QUEUED and len(conn.sender.buffer) == 1000
    assert conn.send_space == conn.config.send_buffer - 1000
    conn.on_segment(seg(IRS + 1, ISS + 1001), 0.1)
    assert conn.sender.buffer is NOTHING_QUEUED


def test_receive_buffer_reassembly_and_limits() -> None:
    buf = ReceiveBuffer(100)
    assert buf.insert(10, b"KLM", 100) == 0
    assert buf.insert(5, b"FGHIJKLMNOP", 100) == 0  # overlaps, extends both sides
    assert buf.insert(200, b"far", 100) == 0  # beyond the window: dropped
    assert buf.insert(0, b"ABCDE", 100) == 16
    assert buf.read(100) == b"ABCDEFGHIJKLMNOP"
    assert not buf.has_gaps
    for i in range(MAX_OUT_OF_ORDER_PIECES + 50):
        buf.insert(2 + 2 * i, b"z", 1 << 20)
    held = buf._held
    assert held is not None
    assert len(held.starts) == MAX_OUT_OF_ORDER_PIECES  # a fragment flood stays bounded
    one_gap = ReceiveBuffer(100)
    one_gap.insert(3, b"DEF", 100)
    assert one_gap.has_gaps and one_gap._held is not None
    assert one_gap.insert(0, b"ABC", 100) == 6
    assert not one_gap.has_gaps and one_gap._held is None  # the filled gap's store let go


def test_receive_buffer_held_fin_trims_data_beyond() -> None:
    buf = ReceiveBuffer(100)
    buf.insert(5, b"0123456789", 100)
    buf.hold_fin(8)
    assert not buf.fin_reached
    assert buf.insert(0, b"abcde", 100) == 8
    assert buf.read(100) == b"abcde012"
    assert buf.fin_reached


def test_window_shift_choice() -> None:
    assert window_shift_for(65535) == 0
    assert window_shift_for(65536) == 1
    assert window_shift_for(256 * 1024) == 3
    assert window_shift_for(1 << 40) == 14


def test_keepalive_probes_and_timeout() -> None:
    cfg = TcpConfig(mss=MSS, delayed_ack=0.0, keepalive=True, keepalive_idle=100.0,
                    keepalive_interval=10.0, keepalive_probes=2)
    conn = established(cfg)
    assert conn.next_deadline() == 100.0
    assert conn.info(0.0).timer is TimerKind.KEEPALIVE
    conn.on_timer(100.0)
    expect(conn, [out(ISS, IRS + 1)])  # <SEQ=SND.NXT-1><ACK=RCV.NXT> (RFC 1122 4.2.3.6)
    send(conn, seg(IRS + 1, ISS + 1), at=101.0)  # answered: idle again
    assert conn.next_deadline() == 201.0
    conn.on_timer(201.0)
    conn.on_timer(211.0)
    assert len(conn.take_outgoing()) == 2
    conn.on_timer(221.0)
    assert conn.state is State.CLOSED
    expect(conn, [out(ISS + 1, None, RST)])
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]


def test_keepalives_are_off_by_default() -> None:
    """RFC 9293 3.8.4 MUST-25: an idle connection with the default config never probes."""
    assert TcpConfig().keepalive is False
    conn = established(TcpConfig(mss=MSS))
    assert conn.next_deadline() is None
    conn.on_timer(1e6)
    assert conn.take_outgoing() == [] and conn.state is State.ESTABLISHED


def test_keepalive_idle_defaults_to_two_hours() -> None:
    """RFC 9293 3.8.4 MUST-28: turned on, the first probe waits at least two hours."""
    conn = established(TcpConfig(mss=MSS, keepalive=True))
    assert conn.next_deadline() == 7200.0
    conn.on_timer(7199.9)
    assert conn.take_outgoing() == []
    conn.on_timer(7200.0)
    expect(conn, [out(ISS, IRS + 1)])


def test_keepalive_switched_per_connection_and_idle_only() -> None:
    """MUST-24: on and off for one connection; MUST-26: no probe while sent data is
    outstanding (the retransmission timer watches the peer then)."""
    cfg = TcpConfig(mss=MSS, delayed_ack=0.0, keepalive_idle=50.0)
    conn = established(cfg)
    conn.set_keepalive(True, 10.0)
    assert conn.next_deadline() == 60.0
    conn.set_keepalive(False, 20.0)
    assert conn.next_deadline() is None
    conn.set_keepalive(True, 20.0)
    conn.send(b"x", 20.0)
    expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"x")])
    conn.on_timer(70.0)  # keep-alive due, but the byte is unacknowledged: no probe
    assert [s.seq for s in conn.take_outgoing()] == [ISS + 1]  # a retransmission only
    send(conn, seg(IRS + 1, ISS + 2), at=71.0)  # acknowledged: idle from now on
    assert conn.next_deadline() == 121.0
    assert conn.info(71.0).timer is TimerKind.KEEPALIVE


def test_info_snapshot() -> None:
    conn = established(TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False))
    conn.send(b"abc", 2.0)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"xy"), at=2.5)
    info = conn.info(2.5)
    assert info.state is State.ESTABLISHED
    assert (info.local, info.remote) == (LOCAL, REMOTE)
    assert (info.recv_q, info.send_q) == (2, 3)
    assert info.timer is TimerKind.RETRANSMIT and info.timer_left == pytest.approx(0.5)
    assert (info.iss, info.irs) == (ISS.value, IRS.value)
    assert (info.snd_una, info.snd_nxt) == (ISS.value + 1, ISS.value + 4)
    assert info.rcv_nxt == IRS.value + 3
    assert info.mss == MSS and info.cwnd == 4 * MSS


def test_passive_connection_info_before_syn() -> None:
    conn = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0)
    info = conn.info(0.0)
    assert info.irs is None and info.rcv_nxt is None and info.timer is None


@pytest.mark.parametrize(("bad", "says"), [
    ({"delayed_ack": 0.5}, "RFC 1122 4.2.3.2"),
    ({"delayed_ack": -1.0}, "delayed_ack"),
    ({"mss": 87}, "mss"),
    ({"recv_buffer": 0}, "recv_buffer"),
    ({"send_buffer": -1}, "send_buffer"),
    ({"rto_min": 2.0, "rto_initial": 1.0}, "rto_min"),
    ({"msl": 0.0}, "msl"),
    ({"syn_retries": -1}, "syn_retries"),
    ({"keepalive_idle": 0.0}, "keepalive_idle"),
    ({"keepalive_probes": 1}, "MUST-29"),
    ({"challenge_ack_limit": 0}, "RFC 5961"),
    ({"fin_wait_2_timeout": -5.0}, "fin_wait_2_timeout"),
])
def test_config_is_validated(bad: dict[str, float], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        TcpConfig(**bad)  # type: ignore[arg-type]


def test_config_limits_are_allowed() -> None:
    TcpConfig(delayed_ack=0.499, mss=88, keepalive_probes=2, fin_wait_2_timeout=None)
