"""Record every call made into Connections during a run, and replay it into twins.

`recording()` wraps Connection's constructors and inputs for the length of a `with`:
every connection opened inside gets a `Recording` (how it was opened, then each input
call with its arguments, outermost calls only), whatever drives it: two sans-I/O
connections, a Stack over a memory link, the replay of a capture. `replay()` opens the
same connection again, with some TcpConfig fields changed, feeds it the recorded inputs
and yields after each one; `state()` is everything a connection holds, as plain values,
so two replays can be compared after every input.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MethodType
from typing import Any

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.rules import Explainer
from userstack.tcp.timers import Timer, Timers
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpSegment

OPENS = ("open_active", "open_passive", "from_syn_cookie")
INPUTS = (
    "on_segment", "on_timer", "send", "receive", "close", "abort", "fail", "set_nodelay",
    "set_keepalive", "set_tos", "allow_super_segments", "on_icmp_error",
)
# not state: the explainer, the configuration (an input, changed on purpose by replay()),
# the fast path's own counters, the connection itself inside the Sender (its output), and
# the stack's handle the connection carries for it
NOT_STATE = frozenset({"_why", "why", "config", "fast_acks", "fast_data", "out", "owner"})

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@dataclass
class Recording:
    opened: Call  # the constructor and its arguments
    calls: list[Call] = field(default_factory=list)

    def count(self, name: str, test: Callable[..., bool] = lambda *a: True) -> int:
        """How many recorded calls of `name` pass `test(*args)`."""
        return sum(1 for n, args, _ in self.calls if n == name and test(*args))


def _kept(value: Any) -> Any:
    """An argument as it was when passed: views of buffers the caller may reuse, copied."""
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, TcpSegment) and isinstance(value.payload, memoryview):
        return dataclasses.replace(value, payload=bytes(value.payload))
    return value


@contextmanager
def recording() -> Iterator[list[Recording]]:
    """While inside, record each Connection opened (the list grows as they open)."""
    recordings: list[Recording] = []
    by_id: dict[int, Recording] = {}
    keep: list[Connection] = []  # alive, so no id() is reused
    depth = [0]
    saved = {name: vars(Connection)[name] for name in (*OPENS, *INPUTS)}

    def opener(name: str) -> classmethod[Connection, ..., Connection]:
        original = getattr(Connection, name)

        def open_(cls: type[Connection], *args: Any, **kwargs: Any) -> Connection:
            depth[0] += 1
            try:
                conn = original(*args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                rec = Recording((name, args, kwargs))
                recordings.append(rec)
                by_id[id(conn)] = rec
                keep.append(conn)
            return conn

        return classmethod(open_)

    def input_(name: str) -> Callable[..., Any]:
        original = saved[name]

        def call(self: Connection, *args: Any, **kwargs: Any) -> Any:
            rec = by_id.get(id(self))
            if rec is not None and depth[0] == 0:
                rec.calls.append((name, tuple(_kept(a) for a in args), kwargs))
            depth[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    try:
        for name in OPENS:
            setattr(Connection, name, opener(name))
        for name in INPUTS:
            setattr(Connection, name, input_(name))
        yield recordings
    finally:
        for name, attribute in saved.items():
            setattr(Connection, name, attribute)


def replay(
    rec: Recording, *, explained: bool = False, **changes: Any
) -> Iterator[tuple[Connection, Any]]:
    """Open the recorded connection again with `changes` to its TcpConfig (explaining
    itself to an Explainer if `explained`), then feed it each recorded input; yields
    (connection, what the call returned) after the opening (None) and after each input."""
    name, args, kwargs = rec.opened
    kwargs = dict(kwargs)
    kwargs["config"] = dataclasses.replace(kwargs.get("config") or TcpConfig(), **changes)
    kwargs.pop("explain", None)
    if explained:
        kwargs["explain"] = Explainer()
    conn = getattr(Connection, name)(*args, **kwargs)
    yield conn, None
    for method, call_args, call_kwargs in rec.calls:
        yield conn, getattr(conn, method)(*call_args, **call_kwargs)


def state(value: Any, path: tuple[int, ...] = ()) -> Any:
    """`value` and everything it holds as plain values (objects as their type's name and
    their attributes, by __slots__ and __dict__), leaving out NOT_STATE and callbacks."""
    if value is None or isinstance(value, bool | int | float | str | SeqNum | enum.Enum):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if id(value) in path:
        return "<cycle>"
    inner = (*path, id(value))
    if isinstance(value, Timers):  # by deadline: all off is all off, with storage or not
        return [value.at(kind) for kind in Timer]
    if isinstance(value, list | tuple | deque):
        return [state(v, inner) for v in value]
    if isinstance(value, dict):
        return {k: state(v, inner) for k, v in value.items()}
    if isinstance(value, MethodType):
        return "<method>"
    fields = {
        n: state(getattr(value, n), inner) for n in _attributes(value) if hasattr(value, n)
    }
    return (type(value).__name__, fields)


_SLOTS: dict[type, frozenset[str]] = {}


def _attributes(value: Any) -> list[str]:
    """The names of `value`'s attributes that are state, by its class's __slots__ (all of
    them, up the MRO) and its __dict__, sorted."""
    cls = type(value)
    slots = _SLOTS.get(cls)
    if slots is None:
        names: set[str] = set()
        for base in cls.__mro__:
            declared = vars(base).get("__slots__", ())
            names.update((declared,) if isinstance(declared, str) else declared)
        slots = _SLOTS[cls] = frozenset(names - NOT_STATE - {"__weakref__", "__dict__"})
    return sorted(slots.union(getattr(value, "__dict__", ())) - NOT_STATE)


def difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two state() values first differ (a path such as `.sender.cc.cwnd`), or None."""
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], dict):
        return difference(a[1], b[1], where) if a[0] == b[0] else f"{where}: {a[0]} != {b[0]}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}.{key}: only on one side"
            found = difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def fast_path_agrees(rec: Recording) -> tuple[int, int]:
    """Replay `rec` with header prediction, without it, and explained (never predicted),
    and assert the three agree after every input; returns how many pure ACKs and data
    segments the fast path took."""
    runs = (
        replay(rec, header_prediction=True),
        replay(rec, header_prediction=False),
        replay(rec, explained=True),
    )
    fast: Connection | None = None
    for step, results in enumerate(zip(*runs, strict=True)):
        call = rec.calls[step - 1][0] if step else rec.opened[0]
        (fast, returned), *others = results
        seen = (returned, fast.take_outgoing(), fast.take_events(), fast.next_deadline())
        held = state(fast)
        for other, other_returned in others:
            assert (other_returned, other.take_outgoing(), other.take_events(),
                    other.next_deadline()) == seen, (step, call)
            other_held = state(other)
            assert held == other_held, (step, call, difference(held, other_held))
    assert fast is not None
    return fast.fast_acks, fast.fast_data
