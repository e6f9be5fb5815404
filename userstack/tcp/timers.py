"""A connection's timers (RFC 9293 3.8.1, 3.8.4, 3.8.6.1, 3.10.8; RFC 8985 6.3, 7.2).

Every timer is an absolute deadline in `now` units, or off. They all live in one
`Timers` object, so "what fires next" (`earliest`), "what is due" (`due`) and "turn
everything off" (`cancel_all`, on entering CLOSED) are each written once:

    timers.arm(Timer.RETRANSMIT, now + rto)
    timers.cancel(Timer.RETRANSMIT)
    timers.earliest()            -> (Timer.DELAYED_ACK, 12.3) or None
    for kind in timers.due(now): ...handle kind...

`Connection.on_timer` is a loop over `due(now)` that hands each kind to its handler.
`due` looks at each deadline as it goes, in the order below, so a handler that cancels
a later timer (a retransmission timeout cancels the loss probe) stops it from firing in
the same call. (smoltcp's `Timer` and `poll_at()` play the same part.)
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum

from .info import TimerKind


class Timer(IntEnum):
    """The timers, in the order they fire when several are due at once."""

    TIME_WAIT = 0  # 2*MSL in TIME-WAIT (RFC 9293 3.10.8): delete the TCB
    FIN_WAIT_2 = 1  # the application is gone and the peer never sent its FIN
    RETRANSMIT = 2  # RFC 6298 retransmission timer (SYN, data, FIN)
    REORDER = 3  # RFC 8985 6.3 RACK reordering timer (with SACK)
    LOSS_PROBE = 4  # RFC 8985 7.2 tail loss probe timeout, PTO (with SACK)
    PERSIST = 5  # zero-window probe (3.8.6.1) or sender SWS override (3.8.6.2.1)
    DELAYED_ACK = 6  # RFC 1122 4.2.3.2
    KEEPALIVE = 7  # RFC 9293 3.8.4

    @property
    def ss_name(self) -> TimerKind:
        """How `ss -o` shows it."""
        return _SS_NAMES[self]


_SS_NAMES = {
    Timer.TIME_WAIT: TimerKind.TIME_WAIT,
    Timer.FIN_WAIT_2: TimerKind.TIME_WAIT,  # as Linux's ss shows it
    Timer.RETRANSMIT: TimerKind.RETRANSMIT,
    Timer.REORDER: TimerKind.RETRANSMIT,  # loss probe and RACK timers: "on" too
    Timer.LOSS_PROBE: TimerKind.RETRANSMIT,
    Timer.PERSIST: TimerKind.PERSIST,
    Timer.DELAYED_ACK: TimerKind.DELAYED_ACK,
    Timer.KEEPALIVE: TimerKind.KEEPALIVE,
}
_ALL = tuple(Timer)
_OFF = (None,) * len(_ALL)


class Timers(list[float | None]):
    """One deadline per Timer, None when off; see the module docstring.

    The list of deadlines itself, indexed by Timer (not an object holding one): a
    connection pays for one object, not two. While every timer is off the list is empty
    and holds no storage (an idle connection's timers are all off, issue 13): the first
    `arm` makes its eight entries, and `earliest` lets them go when it finds none armed.
    Use the methods below, never the list itself."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()  # all off

    def arm(self, kind: Timer, at: float) -> None:
        """Set (or move) `kind` to fire at `at`."""
        if not self:
            self.extend(_OFF)
        self[kind] = at

    def arm_if_off(self, kind: Timer, at: float) -> None:
        """Set `kind` to fire at `at` unless it is already running."""
        if not self:
            self.extend(_OFF)
        if self[kind] is None:
            self[kind] = at

    def cancel(self, kind: Timer) -> None:
        if self:
            self[kind] = None

    def cancel_all(self) -> None:
        self.clear()  # in place: a `due()` loop under way sees it

    def at(self, kind: Timer) -> float | None:
        """When `kind` fires, or None when it is off."""
        return self[kind] if self else None

    def is_armed(self, kind: Timer) -> bool:
        return bool(self) and self[kind] is not None

    def earliest(self) -> tuple[Timer, float] | None:
        """The next timer to fire and when; the first in Timer order on a tie."""
        if not self:
            return None
        best: tuple[Timer, float] | None = None
        for kind, at in zip(_ALL, self, strict=True):
            if at is not None and (best is None or at < best[1]):
                best = (kind, at)
        if best is None:
            self.clear()  # all off: the storage goes until the next arm
        return best

    def due(self, now: float) -> Iterator[Timer]:
        """The timers due at `now`, in Timer order, each checked when it is reached."""
        for kind in _ALL:
            if not self:
                return  # cancel_all() by a handler
            deadline = self[kind]
            if deadline is not None and deadline <= now:
                yield kind

    def __repr__(self) -> str:
        pairs = zip(_ALL, self, strict=False)  # empty while all are off
        armed = ", ".join(f"{k.name}={a:g}" for k, a in pairs if a is not None)
        return f"<Timers {armed or 'off'}>"
