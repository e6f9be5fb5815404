"""Opening: RFC 9293 3.5 (Figures 6-10), 3.10.1 OPEN, 3.10.7.1-3.10.7.3."""

from __future__ import annotations

from tcp_harness import (
    ACK,
    CFG,
    IRS,
    ISS,
    LOCAL,
    LOCAL6,
    MSS,
    PSH,
    REMOTE,
    REMOTE6,
    RST,
    SYN,
    events_of,
    expect,
    expect_nothing,
    out,
    seg,
    send,
)

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection, reset_for
from userstack.tcp.errors import ConnectionFailed
from userstack.tcp.events import Closed, Connected, Error, ErrorReason, StateChanged
from userstack.tcp.state import State
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions

# CFG's 8000-byte buffer needs no shift; SACK is offered (RFC 2018 2)
SYN_OPTS = TcpOptions(mss=MSS, window_scale=0, sack_permitted=True)


def test_active_open_sends_syn_and_enters_syn_sent() -> None:
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG)
    assert conn.state is State.SYN_SENT
    expect(conn, [out(ISS, 0, SYN, options=SYN_OPTS, window=8000)])
    assert events_of(conn) == [StateChanged(State.CLOSED, State.SYN_SENT)]
    assert conn.tcb.snd_una == ISS and conn.tcb.snd_nxt == ISS + 1
    assert conn.next_deadline() == CFG.rto_initial


def test_syn_sent_syn_ack_establishes(syn_sent: Connection) -> None:
    send(syn_sent, seg(IRS, ISS + 1, SYN, window=4000, options=TcpOptions(mss=700)), at=0.1)
    assert syn_sent.state is State.ESTABLISHED
    expect(syn_sent, [out(ISS + 1, IRS + 1)])
    tcb = syn_sent.tcb
    assert (tcb.irs, tcb.rcv_nxt, tcb.snd_una, tcb.snd_nxt) == (IRS, IRS + 1, ISS + 1, ISS + 1)
    assert (tcb.snd_wnd, tcb.snd_wl1, tcb.snd_wl2) == (4000, IRS, ISS + 1)
    assert syn_sent.info(0.1).mss == 700  # Eff.snd.MSS = min(peer's, ours)
    assert syn_sent.info(0.1).srtt == 0.1  # the SYN was timed
    assert syn_sent.next_deadline() is None
    assert Connected() in events_of(syn_sent)


def test_syn_ack_without_mss_option_means_536(syn_sent: Connection) -> None:
    """RFC 9293 3.7.1 (MUST-15): 536 over IPv4, 1220 over IPv6 (its 1280 minimum MTU - 60)."""
    send(syn_sent, seg(IRS, ISS + 1, SYN))
    assumed = 1220 if syn_sent.local.ip.version == 6 else 536
    assert syn_sent.info(0).mss == min(assumed, syn_sent.config.mss)


def test_passive_open_listen_then_syn(listen: Connection) -> None:
    send(listen, seg(IRS, None, SYN, window=3000, options=TcpOptions(mss=MSS)))
    assert listen.state is State.SYN_RECEIVED
    expect(listen, [out(ISS, IRS + 1, SYN | ACK, options=TcpOptions(mss=MSS))])
    assert listen.tcb.rcv_nxt == IRS + 1 and listen.tcb.snd_nxt == ISS + 1
    send(listen, seg(IRS + 1, ISS + 1, window=3000))
    assert listen.state is State.ESTABLISHED
    expect_nothing(listen)
    assert listen.tcb.snd_una == ISS + 1 and listen.tcb.snd_wnd == 3000


def test_listen_ignores_rst_and_resets_ack(listen: Connection) -> None:
    send(listen, seg(IRS, None, RST))
    expect_nothing(listen)
    send(listen, seg(IRS, 777))
    expect(listen, [out(777, None, RST)])  # <SEQ=SEG.ACK><CTL=RST>
    send(listen, seg(IRS, None, TcpFlags(0)))
    expect_nothing(listen)
    assert listen.state is State.LISTEN


def test_syn_sent_unacceptable_ack_gets_rst(syn_sent: Connection) -> None:
    # RFC 9293 3.10.7.3 first: SEG.ACK =< ISS or > SND.NXT: <SEQ=SEG.ACK><CTL=RST>
    send(syn_sent, seg(IRS, ISS, SYN))
    expect(syn_sent, [out(ISS, None, RST)])
    send(syn_sent, seg(IRS, ISS + 5))
    expect(syn_sent, [out(ISS + 5, None, RST)])
    assert syn_sent.state is State.SYN_SENT
    # ...unless it carries RST itself: drop
    send(syn_sent, seg(IRS, ISS + 5, RST))
    expect_nothing(syn_sent)
    assert syn_sent.state is State.SYN_SENT


def test_syn_sent_rst_with_acceptable_ack_is_refused(syn_sent: Connection) -> None:
    send(syn_sent, seg(0, ISS + 1, RST))
    assert syn_sent.state is State.CLOSED
    expect_nothing(syn_sent)
    evs = events_of(syn_sent, Error, Closed)
    assert evs == [Error(ErrorReason.CONNECTION_REFUSED), Closed()]
    try:
        syn_sent.send(b"x", 0)
    except ConnectionFailed as exc:
        assert exc.reason is ErrorReason.CONNECTION_REFUSED
    else:
        raise AssertionError("send after a refused open must raise")


def test_syn_sent_rst_without_ack_is_dropped(syn_sent: Connection) -> None:
    send(syn_sent, seg(IRS, None, RST))
    assert syn_sent.state is State.SYN_SENT
    expect_nothing(syn_sent)


def test_syn_sent_segment_without_syn_or_rst_dropped(syn_sent: Connection) -> None:
    send(syn_sent, seg(IRS, ISS + 1))
    assert syn_sent.state is State.SYN_SENT
    expect_nothing(syn_sent)


def test_simultaneous_open(syn_sent: Connection) -> None:
    """Figure 8: SYN crosses SYN; each side SYN-RECEIVED, then ESTABLISHED."""
    send(syn_sent, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    assert syn_sent.state is State.SYN_RECEIVED
    expect(syn_sent, [out(ISS, IRS + 1, SYN | ACK)])
    # the peer's SYN,ACK: its SYN is old now, so the first step ACKs it ...
    send(syn_sent, seg(IRS, ISS + 1, SYN))
    expect(syn_sent, [out(ISS + 1, IRS + 1)])
    assert syn_sent.state is State.SYN_RECEIVED
    # ... and the peer's ACK completes the open
    send(syn_sent, seg(IRS + 1, ISS + 1))
    assert syn_sent.state is State.ESTABLISHED


def test_simultaneous_open_two_connections() -> None:
    a = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0, config=CFG)
    b = Connection.open_active(REMOTE, LOCAL, iss=IRS, now=0, config=CFG)
    for _ in range(4):
        for x, y in ((a, b), (b, a)):
            for s in x.take_outgoing():
                y.on_segment(s, 0)
    assert a.state is b.state is State.ESTABLISHED


def test_syn_retransmission_and_limit() -> None:
    cfg = TcpConfig(mss=MSS, syn_retries=3, delayed_ack=0.0)
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    conn.take_outgoing()
    t = 0.0
    for rto in (1.0, 2.0, 4.0):
        expect_nothing(conn, at=t + rto - 0.001)
        t += rto
        conn.on_timer(t)
        expect(conn, [out(ISS, 0, SYN, payload=b"")])
        assert conn.next_deadline() == t + 2 * rto
    conn.on_timer(t + 8.0)
    assert conn.state is State.CLOSED
    expect_nothing(conn)  # nothing to reset: the peer never answered
    assert events_of(conn, Error, Closed) == [Error(ErrorReason.TIMED_OUT), Closed()]


def test_syn_ack_retransmission_and_lost_syn_rules(syn_received: Connection) -> None:
    syn_received.on_timer(1.0)
    expect(syn_received, [out(ISS, IRS + 1, SYN | ACK)])
    assert syn_received.next_deadline() == 3.0  # RFC 6298 (5.5) doubled
    send(syn_received, seg(IRS + 1, ISS + 1), at=1.5)
    assert syn_received.state is State.ESTABLISHED
    info = syn_received.info(1.5)
    assert info.srtt is None  # Karn: no sample from the retransmitted SYN,ACK
    assert info.rto == 3.0  # RFC 6298 (5.7)
    assert info.cwnd == info.mss  # RFC 5681 3.1: IW is one segment after a lost SYN


def test_syn_received_resends_syn_ack_for_duplicate_syn(syn_received: Connection) -> None:
    send(syn_received, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    expect(syn_received, [out(ISS, IRS + 1, SYN | ACK)])
    assert syn_received.state is State.SYN_RECEIVED


def test_syn_received_unacceptable_ack_gets_rst(syn_received: Connection) -> None:
    send(syn_received, seg(IRS + 1, ISS + 7))
    expect(syn_received, [out(ISS + 7, None, RST)])
    assert syn_received.state is State.SYN_RECEIVED


def test_passive_syn_received_rst_returns_to_listen(syn_received: Connection) -> None:
    send(syn_received, seg(IRS + 1, None, RST))
    assert syn_received.state is State.LISTEN
    assert events_of(syn_received) == [StateChanged(State.SYN_RECEIVED, State.LISTEN)]
    assert syn_received.next_deadline() is None
    expect_nothing(syn_received)


def test_passive_syn_received_in_window_syn_returns_to_listen(syn_received: Connection) -> None:
    send(syn_received, seg(IRS + 3, None, SYN))
    assert syn_received.state is State.LISTEN


def test_active_syn_received_rst_is_refused(syn_sent: Connection) -> None:
    send(syn_sent, seg(IRS, None, SYN))
    syn_sent.take_outgoing()
    send(syn_sent, seg(IRS + 1, None, RST))
    assert syn_sent.state is State.CLOSED
    assert Error(ErrorReason.CONNECTION_REFUSED) in events_of(syn_sent)


def test_send_in_listen_becomes_active(listen: Connection) -> None:
    """Figure 5: LISTEN --SEND--> SYN-SENT."""
    assert listen.send(b"hello", 0.0) == 5
    assert listen.state is State.SYN_SENT
    expect(listen, [out(ISS, 0, SYN)])
    send(listen, seg(IRS, ISS + 1, SYN, options=TcpOptions(mss=MSS)))
    expect(listen, [out(ISS + 1, IRS + 1, ACK | PSH, payload=b"hello")])


def test_closed_connection_answers_with_reset(closed: Connection) -> None:
    """RFC 9293 3.10.7.1."""
    send(closed, seg(100, None, SYN, payload=b"ab"))
    expect(closed, [out(0, 103, RST | ACK)])
    send(closed, seg(100, 555))
    expect(closed, [out(555, None, RST)])
    send(closed, seg(100, 555, RST))
    expect_nothing(closed)


def test_reset_for_swaps_ports() -> None:
    (r,) = reset_for(seg(1, 2))
    assert (r.src_port, r.dst_port) == (LOCAL.port, REMOTE.port)
    assert reset_for(seg(1, 2, RST)) == []


def test_half_open_recovery() -> None:
    """RFC 9293 3.5.1, Figure 10: we crashed and reconnect with the same ports; the old
    TCB at the peer answers our SYN with an ACK we find unacceptable, so we RST it."""
    peer = Connection.open_active(REMOTE, LOCAL, iss=IRS, now=0.0, config=CFG)
    us_old = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG)
    for _ in range(3):
        for x, y in ((peer, us_old), (us_old, peer)):
            for s in x.take_outgoing():
                y.on_segment(s, 0.0)
    assert peer.state is State.ESTABLISHED
    peer.take_events()
    us = Connection.open_active(LOCAL, REMOTE, iss=SeqNum(400), now=1.0, config=CFG)
    (syn,) = us.take_outgoing()
    peer.on_segment(syn, 1.0)
    (challenge,) = peer.take_outgoing()  # "challenge ACK" (RFC 5961 4)
    assert challenge.flags == ACK and challenge.ack == ISS + 1
    us.on_segment(challenge, 1.0)
    (rst,) = us.take_outgoing()
    assert rst.flags == RST and rst.seq == ISS + 1
    peer.on_segment(rst, 1.0)
    assert peer.state is State.CLOSED
    assert Error(ErrorReason.CONNECTION_RESET) in peer.take_events()
    assert us.state is State.SYN_SENT  # its SYN retransmission will find a new listener


def test_default_syn_retries_last_at_least_three_minutes() -> None:
    """MUST-23 (RFC 9293 3.8.3, RFC 1122 4.2.3.5): R2 for a SYN is at least 3 minutes.
    The RTO doubles from 1 s to the 60 s cap: SYNs at 0, 1, 3, 7, 15, 31, 63, 123."""
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=TcpConfig())
    conn.take_outgoing()
    sent_at = [0.0]
    deadline = 0.0
    while conn.state is State.SYN_SENT:
        next_deadline = conn.next_deadline()
        assert next_deadline is not None
        deadline = next_deadline
        conn.on_timer(deadline)
        if conn.take_outgoing():
            sent_at.append(deadline)
    assert sent_at == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 123.0]
    assert deadline == 183.0  # given up only then: >= 180 s
    assert events_of(conn, Error) == [Error(ErrorReason.TIMED_OUT)]


def test_ipv6_syn_ack_without_mss_option_means_1220() -> None:
    """RFC 9293 3.7.1 (MUST-15): over IPv6 the assumed MSS is 1220, not IPv4's 536."""
    config = TcpConfig(mss=1460)
    for local, remote, assumed in ((LOCAL, REMOTE, 536), (LOCAL6, REMOTE6, 1220)):
        conn = Connection.open_active(local, remote, iss=ISS, now=0.0, config=config)
        conn.take_outgoing()
        conn.on_segment(seg(IRS, ISS + 1, SYN), 0.0)
        assert conn.info(0.0).mss == assumed
