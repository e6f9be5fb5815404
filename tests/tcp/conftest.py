"""One fixture per RFC 9293 state: a Connection driven there by real segments.

Our ISS is 5000, the peer's 9000; outgoing segments and events are drained. Every state
fixture comes in both address families (`endpoints`): the core never looks at an address,
and these runs are what shows it.
"""

from __future__ import annotations

import pytest
from tcp_harness import (
    CFG,
    FIN,
    IRS,
    ISS,
    LOCAL,
    LOCAL6,
    MSS,
    REMOTE,
    REMOTE6,
    SYN,
    established,
    seg,
)

from userstack.tcp.connection import Connection
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.tcp import TcpOptions


def _drained(conn: Connection, state: State) -> Connection:
    assert conn.state is state
    conn.take_outgoing()
    conn.take_events()
    return conn


@pytest.fixture(params=[(LOCAL, REMOTE), (LOCAL6, REMOTE6)], ids=["ipv4", "ipv6"])
def endpoints(request: pytest.FixtureRequest) -> tuple[Endpoint, Endpoint]:
    """(local, remote), IPv4 or IPv6."""
    return request.param


@pytest.fixture
def listen(endpoints: tuple[Endpoint, Endpoint]) -> Connection:
    conn = Connection.open_passive(*endpoints, iss=ISS, now=0.0, config=CFG)
    return _drained(conn, State.LISTEN)


@pytest.fixture
def syn_sent(endpoints: tuple[Endpoint, Endpoint]) -> Connection:
    conn = Connection.open_active(*endpoints, iss=ISS, now=0.0, config=CFG)
    return _drained(conn, State.SYN_SENT)


@pytest.fixture
def syn_received(listen: Connection) -> Connection:
    listen.on_segment(seg(IRS, None, SYN, options=TcpOptions(mss=MSS)), 0.0)
    return _drained(listen, State.SYN_RECEIVED)


@pytest.fixture
def est(endpoints: tuple[Endpoint, Endpoint]) -> Connection:
    return _drained(established(endpoints=endpoints), State.ESTABLISHED)


@pytest.fixture
def fin_wait_1(est: Connection) -> Connection:
    est.close(0.0)
    return _drained(est, State.FIN_WAIT_1)


@pytest.fixture
def fin_wait_2(fin_wait_1: Connection) -> Connection:
    fin_wait_1.on_segment(seg(IRS + 1, ISS + 2), 0.0)
    return _drained(fin_wait_1, State.FIN_WAIT_2)


@pytest.fixture
def close_wait(est: Connection) -> Connection:
    est.on_segment(seg(IRS + 1, ISS + 1, FIN), 0.0)
    return _drained(est, State.CLOSE_WAIT)


@pytest.fixture
def closing(fin_wait_1: Connection) -> Connection:
    fin_wait_1.on_segment(seg(IRS + 1, ISS + 1, FIN), 0.0)
    return _drained(fin_wait_1, State.CLOSING)


@pytest.fixture
def last_ack(close_wait: Connection) -> Connection:
    close_wait.close(0.0)
    return _drained(close_wait, State.LAST_ACK)


@pytest.fixture
def time_wait(fin_wait_2: Connection) -> Connection:
    fin_wait_2.on_segment(seg(IRS + 1, ISS + 2, FIN), 0.0)
    return _drained(fin_wait_2, State.TIME_WAIT)


@pytest.fixture
def closed(est: Connection) -> Connection:
    est.abort(0.0)
    return _drained(est, State.CLOSED)
