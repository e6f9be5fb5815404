"""Urgent data (RFC 9293 3.8.5, 3.10.2, 3.10.7.4 sixth step; RFC 6093).

The urgent pointer names the first octet after the urgent data (MUST-62); urgent data
stays in line with the rest (RFC 6093's advice, SO_OOBINLINE); the application is told
once per run (Urgent, MUST-32) and can ask how much is left to read (MUST-33).
"""

from __future__ import annotations

from tcp_harness import ACK, IRS, ISS, NODELAY, PSH, URG, established, events_of, seg, send

from userstack.tcp.events import Urgent


def test_urgent_send_sets_urg_and_points_past_the_urgent_data() -> None:
    conn = established(NODELAY)
    conn.send(b"ab", 0.0)
    conn.send(b"x" * 1500, 0.0, urgent=True)  # MUST-31: any length; SND.UP = ISS + 1503
    conn.send(b"cd", 0.0)
    got = conn.take_outgoing()
    assert [(s.seq, len(s.payload)) for s in got] == [
        (ISS + 1, 2), (ISS + 3, 1000), (ISS + 1003, 500), (ISS + 1503, 2)
    ]
    plain, *urgent, after = got
    assert not plain.flags & URG and not after.flags & URG
    for s in urgent:
        assert s.flags & URG and s.seq + s.urgent == ISS + 1503  # MUST-62
    conn.on_timer(1.0)  # the first unacknowledged segment again: still urgent
    (again,) = conn.take_outgoing()
    assert again.seq == ISS + 1 and again.flags & URG and again.urgent == 1502
    send(conn, seg(IRS + 1, ISS + 1505), at=1.1)  # all acknowledged: urgent mode over
    conn.send(b"z", 1.1)
    (last,) = conn.take_outgoing()
    assert last.flags == ACK | PSH and last.urgent == 0


def test_urgent_data_arrives_in_line_signalled_once() -> None:
    conn = established()
    assert conn.urgent_pending == 0
    send(conn, seg(IRS + 1, ISS + 1, payload=b"abcdef", urgent=3))  # "abc" is urgent
    assert events_of(conn, Urgent) == [Urgent()]  # MUST-32
    assert conn.urgent_pending == 3  # MUST-33
    send(conn, seg(IRS + 7, ISS + 1, payload=b"gh", urgent=1))  # the run grows to "g"
    assert events_of(conn, Urgent) == []  # same run: not signalled again
    assert conn.urgent_pending == 7
    assert conn.receive(2, 0.0) == b"ab"
    assert conn.urgent_pending == 5
    assert conn.receive(100, 0.0) == b"cdefgh"  # in line, nothing removed
    assert conn.urgent_pending == 0
    send(conn, seg(IRS + 9, ISS + 1, payload=b"i", urgent=5))  # a new run, beyond the data
    assert events_of(conn, Urgent) == [Urgent()]
    assert conn.urgent_pending == 5  # four octets of it have yet to arrive


def test_stale_urgent_pointer_is_not_signalled() -> None:
    conn = established()
    send(conn, seg(IRS + 1, ISS + 1, payload=b"abc"))
    assert conn.receive(10, 0.0) == b"abc"
    conn.take_events()
    # a retransmission of old urgent data: its pointer is not ahead of what was read
    send(conn, seg(IRS + 1, ISS + 1, payload=b"abc", urgent=2))
    assert events_of(conn, Urgent) == [] and conn.urgent_pending == 0
