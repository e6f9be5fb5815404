"""Every transition of RFC 9293 Figure 5, one row each: the event, and the StateChanged
it must produce. (The other test files check the segments and TCB around each.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tcp_harness import ACK, CFG, FIN, IRS, ISS, MSS, RST, SYN, events_of, seg

from userstack.tcp.connection import Connection
from userstack.tcp.events import StateChanged
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.tcp import TcpOptions

S = State
Action = Callable[[Connection], None]
OPTS = TcpOptions(mss=MSS)


def _arrive(*args: object, **kwargs: object) -> Action:
    return lambda c: c.on_segment(seg(*args, **kwargs), 0.0)  # type: ignore[arg-type]


ROWS: list[tuple[str, str | None, Action, State, State]] = [
    ("passive OPEN", None, lambda c: None, S.CLOSED, S.LISTEN),
    ("active OPEN / snd SYN", None, lambda c: None, S.CLOSED, S.SYN_SENT),
    ("rcv SYN / snd SYN,ACK", "listen", _arrive(IRS, None, SYN, options=OPTS), S.LISTEN,
     S.SYN_RECEIVED),
    ("SEND / snd SYN", "listen", lambda c: c.send(b"x", 0.0) and None, S.LISTEN, S.SYN_SENT),
    ("CLOSE", "listen", lambda c: c.close(0.0), S.LISTEN, S.CLOSED),
    ("CLOSE", "syn_sent", lambda c: c.close(0.0), S.SYN_SENT, S.CLOSED),
    ("rcv SYN / snd SYN,ACK (simultaneous)", "syn_sent", _arrive(IRS, None, SYN), S.SYN_SENT,
     S.SYN_RECEIVED),
    ("rcv SYN,ACK / snd ACK", "syn_sent", _arrive(IRS, ISS + 1, SYN), S.SYN_SENT,
     S.ESTABLISHED),
    ("rcv RST (passive)", "syn_received", _arrive(IRS + 1, None, RST), S.SYN_RECEIVED,
     S.LISTEN),
    ("rcv ACK of SYN", "syn_received", _arrive(IRS + 1, ISS + 1, ACK), S.SYN_RECEIVED,
     S.ESTABLISHED),
    ("CLOSE / snd FIN", "syn_received", lambda c: c.close(0.0), S.SYN_RECEIVED, S.FIN_WAIT_1),
    ("CLOSE / snd FIN", "est", lambda c: c.close(0.0), S.ESTABLISHED, S.FIN_WAIT_1),
    ("rcv FIN / snd ACK", "est", _arrive(IRS + 1, ISS + 1, FIN), S.ESTABLISHED, S.CLOSE_WAIT),
    ("rcv ACK of FIN", "fin_wait_1", _arrive(IRS + 1, ISS + 2), S.FIN_WAIT_1, S.FIN_WAIT_2),
    ("rcv FIN / snd ACK", "fin_wait_1", _arrive(IRS + 1, ISS + 1, FIN), S.FIN_WAIT_1,
     S.CLOSING),
    ("rcv FIN / snd ACK", "fin_wait_2", _arrive(IRS + 1, ISS + 2, FIN), S.FIN_WAIT_2,
     S.TIME_WAIT),
    ("rcv ACK of FIN", "closing", _arrive(IRS + 2, ISS + 2), S.CLOSING, S.TIME_WAIT),
    ("CLOSE / snd FIN", "close_wait", lambda c: c.close(0.0), S.CLOSE_WAIT, S.LAST_ACK),
    ("rcv ACK of FIN", "last_ack", _arrive(IRS + 2, ISS + 2), S.LAST_ACK, S.CLOSED),
    ("timeout=2MSL", "time_wait", lambda c: c.on_timer(2 * CFG.msl), S.TIME_WAIT, S.CLOSED),
]


@pytest.mark.parametrize(
    ("event", "fixture", "action", "old", "new"), ROWS,
    ids=[f"{old.value}--{event}-->{new.value}" for event, _, _, old, new in ROWS],
)
def test_figure_5(
    event: str, fixture: str | None, action: Action, old: State, new: State,
    endpoints: tuple[Endpoint, Endpoint], request: pytest.FixtureRequest,
) -> None:
    if fixture is None:
        opener = Connection.open_passive if new is S.LISTEN else Connection.open_active
        conn = opener(*endpoints, iss=ISS, now=0.0, config=CFG)
    else:
        conn = request.getfixturevalue(fixture)
        assert conn.state is old
        action(conn)
    assert conn.state is new
    assert StateChanged(old, new) in events_of(conn, StateChanged)
