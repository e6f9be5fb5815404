"""Timers (timers.py) on their own, and the rule that the core keeps no clock."""

from __future__ import annotations

from tcp_harness import ACK, IRS, ISS, PSH, established, expect, out

from userstack.tcp.config import TcpConfig
from userstack.tcp.info import TimerKind
from userstack.tcp.timers import Timer, Timers


def test_arm_cancel_earliest() -> None:
    timers = Timers()
    assert timers.earliest() is None
    timers.arm(Timer.KEEPALIVE, 7200.0)
    timers.arm(Timer.RETRANSMIT, 1.0)
    timers.arm_if_off(Timer.RETRANSMIT, 5.0)  # already running: kept at 1.0
    assert timers.earliest() == (Timer.RETRANSMIT, 1.0)
    assert timers.at(Timer.RETRANSMIT) == 1.0 and timers.is_armed(Timer.KEEPALIVE)
    timers.cancel(Timer.RETRANSMIT)
    assert timers.earliest() == (Timer.KEEPALIVE, 7200.0)
    timers.cancel_all()
    assert timers.earliest() is None and not timers.is_armed(Timer.KEEPALIVE)


def test_a_tie_goes_to_the_first_in_timer_order() -> None:
    timers = Timers()
    timers.arm(Timer.DELAYED_ACK, 2.0)
    timers.arm(Timer.RETRANSMIT, 2.0)
    assert timers.earliest() == (Timer.RETRANSMIT, 2.0)


def test_due_is_in_order_and_sees_what_earlier_handlers_cancelled() -> None:
    timers = Timers()
    for kind in (Timer.KEEPALIVE, Timer.LOSS_PROBE, Timer.RETRANSMIT, Timer.DELAYED_ACK):
        timers.arm(kind, 1.0)
    timers.arm(Timer.PERSIST, 9.0)  # not due
    fired = []
    for kind in timers.due(1.0):
        fired.append(kind)
        if kind is Timer.RETRANSMIT:
            timers.cancel(Timer.LOSS_PROBE)  # as a retransmission timeout does
    assert fired == [Timer.RETRANSMIT, Timer.DELAYED_ACK, Timer.KEEPALIVE]


def test_ss_names() -> None:
    assert Timer.FIN_WAIT_2.ss_name is TimerKind.TIME_WAIT  # as Linux's ss shows it
    assert Timer.LOSS_PROBE.ss_name is TimerKind.RETRANSMIT
    assert Timer.DELAYED_ACK.ss_name is TimerKind.DELAYED_ACK


def test_the_core_keeps_no_clock() -> None:
    """No Connection, Sender or Receiver stores a "current time": every entry point takes
    `now` (the bug this prevents: Nagle turned off at t=100 sent a segment stamped with
    the time of an earlier call)."""
    conn = established()
    for obj in (conn, conn.sender, conn.receiver):
        names = set(vars(obj)) if hasattr(obj, "__dict__") else set(type(obj).__slots__)
        assert not {n for n in names if n.lstrip("_") in ("now", "clock", "time")}


def test_turning_nagle_off_sends_at_the_time_of_that_call() -> None:
    """Regression: `set_nodelay` used the clock of the previous call. The held segment
    must be recorded as sent at the set_nodelay call's `now`."""
    conn = established(TcpConfig(mss=1000, recv_buffer=64000))  # Nagle on
    conn.send(b"a", 0.004)
    conn.send(b"b", 0.004)  # held: "a" is in flight
    assert len(conn.take_outgoing()) == 1
    conn.set_nodelay(True, 0.5)
    expect(conn, [out(ISS + 2, IRS + 1, PSH | ACK, payload=b"b")])
    last = conn.sender.board.last()
    assert last is not None and last.xmit_ts == 0.5  # not 0.004
    assert conn.sender.last_sent_at == 0.5
