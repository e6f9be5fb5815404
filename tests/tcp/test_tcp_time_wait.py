"""TIME-WAIT: 2*MSL (RFC 9293 3.4.2, 3.10.8), RFC 1337, SYN in TIME-WAIT (RFC 5961 4)."""

from __future__ import annotations

from tcp_harness import (
    CFG,
    FIN,
    IRS,
    ISS,
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


def test_accepts_new_syn_only_above_rcv_nxt_in_time_wait(time_wait: Connection) -> None:
    """RFC 1122 4.2.2.13 / RFC 9293 MAY-2: a SYN beyond RCV.NXT may reopen the four-tuple;
    anything else in TIME-WAIT stays a challenge ACK (test above)."""
    rcv_nxt = time_wait.tcb.rcv_nxt
    assert rcv_nxt == IRS + 2  # past the peer's FIN
    assert time_wait.accepts_new_syn(seg(rcv_nxt + 1000, None, SYN))
    assert not time_wait.accepts_new_syn(seg(rcv_nxt, None, SYN))  # not above it
    assert not time_wait.accepts_new_syn(seg(rcv_nxt - 1000, None, SYN))
    assert not time_wait.accepts_new_syn(seg(rcv_nxt + 1000, ISS + 2, SYN))  # SYN,ACK
    assert not time_wait.accepts_new_syn(seg(rcv_nxt + 1000, None, SYN | FIN))
    est = established()
    assert not est.accepts_new_syn(seg(est.tcb.rcv_nxt + 1000, None, SYN))
    # (a): the new ISS is above every sequence number this incarnation used
    snd_nxt = time_wait.tcb.snd_nxt
    assert time_wait.new_incarnation_iss(snd_nxt + 5) == snd_nxt + 5
    assert time_wait.new_incarnation_iss(snd_nxt - 5) == snd_nxt + 1
