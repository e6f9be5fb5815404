"""Closing: RFC 9293 3.6 (Figures 12-14), 3.10.4 CLOSE, 3.10.5 ABORT, eighth step."""

from __future__ import annotations

import pytest
from tcp_harness import (
    ACK,
    CFG,
    FIN,
    IRS,
    ISS,
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
from userstack.tcp.errors import ConnectionFailed, ConnectionStateError
from userstack.tcp.events import Closed, DataReadable, Eof, Error, ErrorReason, StateChanged
from userstack.tcp.state import State


def test_close_in_established_sends_fin(est: Connection) -> None:
    est.close(0.0)
    assert est.state is State.FIN_WAIT_1
    expect(est, [out(ISS + 1, IRS + 1, FIN | ACK)])
    assert est.tcb.snd_nxt == ISS + 2
    assert est.next_deadline() == 1.0  # the FIN is retransmitted like data


def test_fin_wait_1_ack_of_fin_to_fin_wait_2(fin_wait_1: Connection) -> None:
    send(fin_wait_1, seg(IRS + 1, ISS + 2))
    assert fin_wait_1.state is State.FIN_WAIT_2
    expect_nothing(fin_wait_1)
    # fully closed: the peer's FIN is awaited for fin_wait_2_timeout, no longer
    assert fin_wait_1.next_deadline() == CFG.fin_wait_2_timeout == 60.0


def test_fin_wait_2_times_out_after_a_full_close(fin_wait_2: Connection) -> None:
    expect_nothing(fin_wait_2, at=59.9)
    assert fin_wait_2.state is State.FIN_WAIT_2
    events_of(fin_wait_2)
    fin_wait_2.on_timer(60.0)
    assert fin_wait_2.state is State.CLOSED
    assert events_of(fin_wait_2) == [StateChanged(State.FIN_WAIT_2, State.CLOSED), Closed()]
    expect_nothing(fin_wait_2)  # the peer is not told (Linux sends nothing either)


def test_fin_wait_2_after_a_half_close_waits_for_the_peer(est: Connection) -> None:
    est.close(0.0, half=True)
    send(est, seg(IRS + 1, ISS + 2))
    assert est.state is State.FIN_WAIT_2
    assert est.next_deadline() is None  # the application still reads: no timeout
    est.close(5.0)  # now it lets go too
    assert est.next_deadline() == 65.0
    est.on_timer(65.0)
    assert est.state is State.CLOSED


def test_fin_wait_2_fin_to_time_wait(fin_wait_2: Connection) -> None:
    send(fin_wait_2, seg(IRS + 1, ISS + 2, FIN), at=3.0)
    assert fin_wait_2.state is State.TIME_WAIT
    expect(fin_wait_2, [out(ISS + 2, IRS + 2)])
    assert fin_wait_2.eof_received
    assert fin_wait_2.next_deadline() == 3.0 + 2 * CFG.msl


def test_fin_wait_1_fin_and_ack_together_to_time_wait(fin_wait_1: Connection) -> None:
    """The three-way close: FIN+ACK in one segment, FIN-WAIT-1 -> TIME-WAIT directly."""
    send(fin_wait_1, seg(IRS + 1, ISS + 2, FIN))
    assert fin_wait_1.state is State.TIME_WAIT
    expect(fin_wait_1, [out(ISS + 2, IRS + 2)])
    changes = events_of(fin_wait_1, StateChanged)
    assert changes == [StateChanged(State.FIN_WAIT_1, State.TIME_WAIT)]


def test_simultaneous_close_through_closing(fin_wait_1: Connection) -> None:
    send(fin_wait_1, seg(IRS + 1, ISS + 1, FIN))
    assert fin_wait_1.state is State.CLOSING
    expect(fin_wait_1, [out(ISS + 2, IRS + 2)])
    send(fin_wait_1, seg(IRS + 2, ISS + 2))
    assert fin_wait_1.state is State.TIME_WAIT


def test_closing_ignores_segment_not_acking_fin(closing: Connection) -> None:
    send(closing, seg(IRS + 2, ISS + 1))
    assert closing.state is State.CLOSING
    expect_nothing(closing)


def test_established_fin_to_close_wait(est: Connection) -> None:
    send(est, seg(IRS + 1, ISS + 1, FIN | PSH, payload=b"bye"))
    assert est.state is State.CLOSE_WAIT
    expect(est, [out(ISS + 1, IRS + 5)])
    assert events_of(est, Eof) == [Eof()]
    assert est.receive(100, 0) == b"bye"
    assert est.receive(100, 0) == b""
    assert est.eof_received


def test_close_wait_close_to_last_ack_to_closed(close_wait: Connection) -> None:
    close_wait.close(1.0)
    assert close_wait.state is State.LAST_ACK
    expect(close_wait, [out(ISS + 1, IRS + 2, FIN | ACK)])
    send(close_wait, seg(IRS + 2, ISS + 1))  # not our FIN yet
    assert close_wait.state is State.LAST_ACK
    send(close_wait, seg(IRS + 2, ISS + 2))
    assert close_wait.state is State.CLOSED
    assert events_of(close_wait)[-2:] == [StateChanged(State.LAST_ACK, State.CLOSED), Closed()]
    assert close_wait.next_deadline() is None


def test_passive_closer_sends_fin_with_the_owed_ack() -> None:
    """With delayed ACKs, the ACK of the peer's FIN waits; if the application closes
    meanwhile, one FIN+ACK carries both (what real peers see as a three-way close)."""
    conn = established(TcpConfig(mss=1000, recv_buffer=8000, delayed_ack=0.2))
    send(conn, seg(IRS + 1, ISS + 1, FIN), at=1.0)
    assert conn.state is State.CLOSE_WAIT
    expect_nothing(conn)
    assert conn.next_deadline() == pytest.approx(1.2)
    conn.close(1.05)
    expect(conn, [out(ISS + 1, IRS + 2, FIN | ACK)])
    assert conn.next_deadline() == pytest.approx(2.05)  # only the retransmission timer


def test_close_wait_delayed_ack_of_fin_fires() -> None:
    conn = established(TcpConfig(mss=1000, recv_buffer=8000, delayed_ack=0.2))
    send(conn, seg(IRS + 1, ISS + 1, FIN), at=1.0)
    expect_nothing(conn, at=1.19)
    conn.on_timer(1.2)
    expect(conn, [out(ISS + 1, IRS + 2)])


def test_fin_rides_on_last_data_segment(est: Connection) -> None:
    est.set_nodelay(True, 0.0)
    est.send(b"a" * 1500, 0.0)
    expect(
        est,
        [
            out(ISS + 1, IRS + 1, payload=b"a" * 1000),
            out(ISS + 1001, IRS + 1, PSH | ACK, payload=b"a" * 500),
        ],
    )
    est.send(b"b" * 10, 0.0)
    est.take_outgoing()
    est.close(0.0)
    expect(est, [out(ISS + 1511, IRS + 1, FIN | ACK)])


def test_close_with_queued_data_sends_fin_after_it(est: Connection) -> None:
    est.send(b"x" * 1000, 0.0)
    est.send(b"y" * 300, 0.0)  # held by Nagle: data in flight
    expect(est, [out(ISS + 1, IRS + 1, PSH | ACK, payload=b"x" * 1000)])
    est.close(0.0)
    # the FIN can carry the last bytes now: nothing more will come, so Nagle lets them go
    expect(est, [out(ISS + 1001, IRS + 1, FIN | ACK, payload=b"y" * 300)])
    assert est.tcb.snd_nxt == ISS + 1302


def test_fin_retransmission(fin_wait_1: Connection) -> None:
    fin_wait_1.on_timer(1.0)
    expect(fin_wait_1, [out(ISS + 1, IRS + 1, FIN | ACK)])
    fin_wait_1.on_timer(3.0)
    expect(fin_wait_1, [out(ISS + 1, IRS + 1, FIN | ACK)])
    send(fin_wait_1, seg(IRS + 1, ISS + 2), at=3.5)
    assert fin_wait_1.state is State.FIN_WAIT_2


def test_last_ack_fin_retransmission_limit() -> None:
    conn = established(TcpConfig(mss=1000, recv_buffer=8000, delayed_ack=0.0, max_retries=2))
    send(conn, seg(IRS + 1, ISS + 1, FIN))
    conn.close(0.0)
    conn.take_outgoing()
    conn.on_timer(1.0)
    conn.on_timer(3.0)
    assert len(conn.take_outgoing()) == 2
    conn.on_timer(7.0)
    assert conn.state is State.CLOSED
    expect(conn, [out(ISS + 2, None, RST)])
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]


def test_close_with_unread_data_sends_rst(est: Connection) -> None:
    """RFC 1122 4.2.2.13."""
    send(est, seg(IRS + 1, ISS + 1, payload=b"unread"))
    est.take_outgoing()
    est.close(0.0)
    expect(est, [out(ISS + 1, None, RST)])
    assert est.state is State.CLOSED


def test_abort_sends_rst(est: Connection) -> None:
    est.abort(0.0)
    expect(est, [out(ISS + 1, None, RST)])
    assert est.state is State.CLOSED
    assert events_of(est) == [StateChanged(State.ESTABLISHED, State.CLOSED), Closed()]
    est.abort(0.0)  # CLOSED: nothing more
    expect_nothing(est)


@pytest.mark.parametrize("fixture", ["listen", "syn_sent", "last_ack", "closing", "time_wait"])
@pytest.mark.usefixtures("endpoints")  # the state fixture, found by name, in both families
def test_abort_without_rst(fixture: str, request: pytest.FixtureRequest) -> None:
    conn: Connection = request.getfixturevalue(fixture)
    conn.abort(0.0)
    expect_nothing(conn)
    assert conn.state is State.CLOSED


@pytest.mark.parametrize("fixture", ["listen", "syn_sent"])
@pytest.mark.usefixtures("endpoints")  # the state fixture, found by name, in both families
def test_close_before_synchronized_deletes_tcb(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    conn: Connection = request.getfixturevalue(fixture)
    conn.close(0.0)
    assert conn.state is State.CLOSED
    expect_nothing(conn)


def test_close_in_syn_received_sends_fin(syn_received: Connection) -> None:
    """Figure 5: SYN-RECEIVED --CLOSE/snd FIN--> FIN-WAIT-1."""
    syn_received.close(0.0)
    assert syn_received.state is State.FIN_WAIT_1
    expect(syn_received, [out(ISS + 1, IRS + 1, FIN | ACK)])
    send(syn_received, seg(IRS + 1, ISS + 2))
    assert syn_received.state is State.FIN_WAIT_2


def test_close_in_syn_received_with_data_waits_for_established(syn_received: Connection) -> None:
    syn_received.send(b"data", 0.0)
    syn_received.close(0.0)
    assert syn_received.state is State.SYN_RECEIVED
    expect_nothing(syn_received)
    send(syn_received, seg(IRS + 1, ISS + 1))
    assert syn_received.state is State.FIN_WAIT_1
    expect(syn_received, [out(ISS + 1, IRS + 1, FIN | ACK, payload=b"data")])


def test_close_is_idempotent_once_fin_queued(fin_wait_1: Connection) -> None:
    fin_wait_1.close(0.0)
    expect_nothing(fin_wait_1)


@pytest.mark.parametrize(
    "fixture", ["fin_wait_1", "fin_wait_2", "closing", "last_ack", "time_wait"]
)
@pytest.mark.usefixtures("endpoints")  # the state fixture, found by name, in both families
def test_send_after_close_raises(fixture: str, request: pytest.FixtureRequest) -> None:
    conn: Connection = request.getfixturevalue(fixture)
    with pytest.raises(ConnectionStateError, match="closing"):
        conn.send(b"x", 0.0)


def test_send_on_closed_raises(closed: Connection) -> None:
    with pytest.raises(ConnectionStateError, match="does not exist"):
        closed.send(b"x", 0.0)


@pytest.mark.parametrize("fixture", ["est", "fin_wait_1", "fin_wait_2", "close_wait"])
@pytest.mark.usefixtures("endpoints")  # the state fixture, found by name, in both families
def test_rst_in_synchronized_states_resets(fixture: str, request: pytest.FixtureRequest) -> None:
    conn: Connection = request.getfixturevalue(fixture)
    send(conn, seg(conn.tcb.rcv_nxt, None, RST))
    assert conn.state is State.CLOSED
    expect_nothing(conn)
    assert events_of(conn, Error, Closed) == [Error(ErrorReason.CONNECTION_RESET), Closed()]
    with pytest.raises(ConnectionFailed):
        conn.receive(10, 0.0)
    with pytest.raises(ConnectionFailed):
        conn.send(b"x", 0.0)


@pytest.mark.parametrize("fixture", ["closing", "last_ack"])
@pytest.mark.usefixtures("endpoints")  # the state fixture, found by name, in both families
def test_rst_in_closing_states_closes_quietly(fixture: str, request: pytest.FixtureRequest) -> None:
    conn: Connection = request.getfixturevalue(fixture)
    send(conn, seg(conn.tcb.rcv_nxt, None, RST))
    assert conn.state is State.CLOSED
    assert events_of(conn, Error) == []


def test_half_close_still_receives(est: Connection) -> None:
    """close(half=True) is shutdown(SHUT_WR): FIN-WAIT-2 still delivers data."""
    est.close(0.0, half=True)
    send(est, seg(IRS + 1, ISS + 2))
    est.take_outgoing()
    assert est.state is State.FIN_WAIT_2
    send(est, seg(IRS + 1, ISS + 2, payload=b"more"))
    expect(est, [out(ISS + 2, IRS + 5)])
    assert est.receive(10, 0.0) == b"more"


def test_data_after_full_close_is_still_delivered(fin_wait_2: Connection) -> None:
    """RFC 1122 4.2.2.13's "or if new data is received after CLOSE is called" is the
    stack's policy (it knows whether the application still holds the connection): the
    core buffers the data and says DataReadable; the stack may abort()."""
    send(fin_wait_2, seg(IRS + 1, ISS + 2, payload=b"more"))
    expect(fin_wait_2, [out(ISS + 2, IRS + 5)])
    assert events_of(fin_wait_2) == [DataReadable()]


def test_half_close_keeps_out_of_order_data(est: Connection) -> None:
    send(est, seg(IRS + 3, ISS + 1, payload=b"cd"))
    est.take_outgoing()
    est.close(0.0, half=True)
    assert est.state is State.FIN_WAIT_1
    send(est, seg(IRS + 1, ISS + 2, payload=b"ab"))
    assert est.receive(10, 0.0) == b"abcd"


def test_full_close_with_out_of_order_data_sends_rst(est: Connection) -> None:
    send(est, seg(IRS + 3, ISS + 1, payload=b"cd"))
    est.take_outgoing()
    est.close(0.0)
    expect(est, [out(ISS + 1, None, RST)])


def test_out_of_order_fin_is_held(est: Connection) -> None:
    send(est, seg(IRS + 4, ISS + 1, FIN, payload=b"def"))
    assert est.state is State.ESTABLISHED
    expect(est, [out(ISS + 1, IRS + 1)])  # out of order: ACK at once
    send(est, seg(IRS + 1, ISS + 1, payload=b"abc"))
    assert est.state is State.CLOSE_WAIT
    expect(est, [out(ISS + 1, IRS + 8)])
    assert est.receive(10, 0.0) == b"abcdef"
