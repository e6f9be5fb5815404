"""TIME-WAIT: 2*MSL (RFC 9293 3.4.2, 3.10.8), RFC 1337, SYN in TIME-WAIT (RFC 5961 4)."""

from __future__ import annotations

from tcp_harness import (
    CFG,
    FIN,
    IRS,
    ISS,
    RST,
    SYN,
    events_of,
    expect,
    expect_nothing,
    out,
    seg,
    send,
)

from userstack.tcp.connection import Connection
from userstack.tcp.events import Closed, StateChanged
from userstack.tcp.info import TimerKind
from userstack.tcp.state import State

TWO_MSL = 2 * CFG.msl


def test_time_wait_expires_at_exactly_two_msl(time_wait: Connection) -> None:
    assert time_wait.next_deadline() == TWO_MSL
    assert time_wait.info(0.0).timer is TimerKind.TIME_WAIT
    time_wait.on_timer(TWO_MSL - 1e-9)
    assert time_wait.state is State.TIME_WAIT
    time_wait.on_timer(TWO_MSL)
    assert time_wait.state is State.CLOSED
    assert events_of(time_wait) == [StateChanged(State.TIME_WAIT, State.CLOSED), Closed()]
    assert time_wait.next_deadline() is None


def test_time_wait_reacks_retransmitted_fin_and_restarts_timer(time_wait: Connection) -> None:
    send(time_wait, seg(IRS + 1, ISS + 2, FIN), at=5.0)
    expect(time_wait, [out(ISS + 2, IRS + 2)])
    assert time_wait.state is State.TIME_WAIT
    assert time_wait.next_deadline() == 5.0 + TWO_MSL
    time_wait.on_timer(TWO_MSL)
    assert time_wait.state is State.TIME_WAIT


def test_time_wait_ignores_rst(time_wait: Connection) -> None:
    """RFC 1337: no TIME-WAIT assassination."""
    send(time_wait, seg(IRS + 2, None, RST))
    assert time_wait.state is State.TIME_WAIT
    expect_nothing(time_wait)


def test_time_wait_new_syn_gets_challenge_ack(time_wait: Connection) -> None:
    """RFC 9293 3.10.7.4 fourth step / RFC 5961 4: challenge ACK, whatever the sequence."""
    for isn in (IRS + 2, IRS + 100_000_000):
        send(time_wait, seg(isn, None, SYN))
        expect(time_wait, [out(ISS + 2, IRS + 2)])
        assert time_wait.state is State.TIME_WAIT


def test_time_wait_acks_old_duplicate_data(time_wait: Connection) -> None:
    send(time_wait, seg(IRS - 10, ISS + 2, payload=b"old"))
    expect(time_wait, [out(ISS + 2, IRS + 2)])
    assert time_wait.next_deadline() == TWO_MSL  # only a FIN restarts it
