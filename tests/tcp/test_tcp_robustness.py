"""Hostile or odd input: RFC 5961, wraparound, and "anything from a peer never raises"."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_harness import (
    ACK,
    CFG,
    FIN,
    IRS,
    ISS,
    LOCAL,
    MSS,
    PSH,
    REMOTE,
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
from userstack.tcp.events import Error
from userstack.tcp.state import State
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment


def test_rst_in_window_but_not_exact_gets_challenge_ack(est: Connection) -> None:
    """RFC 5961 3.2."""
    send(est, seg(IRS + 100, None, RST))
    assert est.state is State.ESTABLISHED
    expect(est, [out(ISS + 1, IRS + 1)])


def test_rst_out_of_window_is_dropped_silently(est: Connection) -> None:
    send(est, seg(IRS + 100_000, None, RST))
    assert est.state is State.ESTABLISHED
    expect_nothing(est)


def test_syn_in_established_gets_challenge_ack(est: Connection) -> None:
    """RFC 5961 4.2 / RFC 9293 3.10.7.4 fourth step, in and out of the window."""
    for s in (IRS + 1, IRS + 5, IRS - 7, IRS + 3_000_000):
        send(est, seg(s, None, SYN))
        expect(est, [out(ISS + 1, IRS + 1)])
        assert est.state is State.ESTABLISHED


def test_challenge_acks_are_rate_limited(est: Connection) -> None:
    """RFC 5961 7: at most challenge_ack_limit (10) per second; the rest are counted."""
    for _ in range(15):
        send(est, seg(IRS + 100, None, RST), at=5.0)
    assert len(est.take_outgoing()) == 10
    assert est.challenge_acks_suppressed == 5
    send(est, seg(IRS + 1, None, SYN), at=5.99)  # the same second: still limited
    expect_nothing(est)
    send(est, seg(IRS + 1, None, SYN), at=6.0)  # a new second
    expect(est, [out(ISS + 1, IRS + 1)])
    assert est.challenge_acks_suppressed == 6 and est.state is State.ESTABLISHED


def test_ack_of_unsent_data_is_acked_and_dropped(est: Connection) -> None:
    """RFC 9293 3.10.7.4 fifth step / RFC 5961 5.2: the text is not processed."""
    send(est, seg(IRS + 1, ISS + 50, payload=b"evil"))
    expect(est, [out(ISS + 1, IRS + 1)])
    assert est.readable == 0 and est.tcb.snd_una == ISS + 1


def test_ancient_ack_gets_challenge_ack(est: Connection) -> None:
    """RFC 5961 5.2: SEG.ACK < SND.UNA - MAX.SND.WND."""
    send(est, seg(IRS + 1, ISS - 100_000, payload=b"x"))
    expect(est, [out(ISS + 1, IRS + 1)])
    assert est.readable == 0


def test_old_duplicate_ack_is_ignored_but_text_taken(est: Connection) -> None:
    send(est, seg(IRS + 1, ISS - 10, payload=b"ok"))
    expect(est, [out(ISS + 1, IRS + 3)])
    assert est.receive(10, 0.0) == b"ok"


def test_zero_window_still_accepts_acks(est: Connection) -> None:
    """RFC 9293 3.10.7.4: "special allowance should be made to accept valid ACKs"."""
    est.set_nodelay(True, 0.0)
    send(est, seg(IRS + 1, ISS + 1, payload=b"f" * 8000))
    est.take_outgoing()
    assert est.tcb.rcv_wnd == 0
    est.send(b"mine", 0.0)
    est.take_outgoing()
    send(est, seg(IRS + 8001, ISS + 5, payload=b"more"))  # data we cannot take, a valid ACK
    assert est.tcb.snd_una == ISS + 5
    expect(est, [out(ISS + 5, IRS + 8001, window=0)])
    assert est.readable == 8000


def test_sequence_wraparound_both_ways() -> None:
    iss = SeqNum(2**32 - 1500)
    irs = SeqNum(2**32 - 10)
    conn = established(iss=iss, irs=irs)
    conn.set_nodelay(True, 0.0)
    conn.send(b"a" * 3000, 0.0)
    got = conn.take_outgoing()
    assert [s.seq.value for s in got] == [2**32 - 1499, 2**32 - 499, 501]
    send(conn, seg(irs + 1, iss + 3001))
    assert conn.tcb.snd_una == SeqNum(1501)
    # the peer's data wraps too, and arrives out of order across the wrap
    send(conn, seg(irs + 6, iss + 3001, payload=b"fghij"))
    send(conn, seg(irs + 1, iss + 3001, payload=b"abcde"))
    assert conn.receive(100, 0.0) == b"abcdefghij"
    assert conn.tcb.rcv_nxt == SeqNum(1)


def test_window_scaling_negotiated() -> None:
    """RFC 7323 2: both SYNs carry the option; SYN windows are never scaled."""
    from userstack.tcp.config import TcpConfig

    cfg = TcpConfig(mss=MSS, recv_buffer=1 << 20, delayed_ack=0.0)
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    (syn,) = conn.take_outgoing()
    assert syn.options.window_scale == 5  # 1 MiB >> 5 fits in 16 bits
    assert syn.window == 0xFFFF  # unscaled in a SYN
    send(conn, seg(IRS, ISS + 1, SYN, window=1000, options=TcpOptions(mss=MSS, window_scale=16)))
    assert conn.tcb.snd_wscale == 14  # RFC 7323 2.3: capped at 14
    assert conn.tcb.snd_wnd == 1000  # the SYN,ACK's window is not scaled
    (ack,) = conn.take_outgoing()
    assert ack.window == (1 << 20) >> 5
    send(conn, seg(IRS + 1, ISS + 1, window=3))
    assert conn.tcb.snd_wnd == 3 << 14


def test_scaled_window_is_rounded_up_never_shrinking() -> None:
    """RFC 7323 2.4: with a shift of 5, a window that is not a multiple of 32 is rounded
    up, so the right edge RCV.NXT + window never moves left (truncating would)."""
    from userstack.tcp.config import TcpConfig

    cfg = TcpConfig(mss=MSS, recv_buffer=1 << 20, delayed_ack=0.0)
    conn = established(cfg, peer_options=TcpOptions(mss=MSS, window_scale=0))
    right = IRS + 1 + (1 << 20)
    nxt = IRS + 1
    for size in (1, 7, 33, 999, 1000, 31):  # never read: the free buffer shrinks oddly
        send(conn, seg(nxt, ISS + 1, payload=b"u" * size))
        nxt = nxt + size
        (ack,) = conn.take_outgoing()
        assert ack.ack == nxt
        edge = ack.ack + (ack.window << 5)
        assert edge >= right  # never shrinks (SHLD-14)
        assert edge - right < 32  # ... by less than one unit of scale
        right = edge


def test_window_scaling_needs_both_syns() -> None:
    from userstack.tcp.config import TcpConfig

    cfg = TcpConfig(mss=MSS, recv_buffer=1 << 20, delayed_ack=0.0)
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    conn.take_outgoing()
    send(conn, seg(IRS, ISS + 1, SYN, window=1000, options=TcpOptions(mss=MSS)))
    assert conn.tcb.snd_wscale == conn.tcb.rcv_wscale == 0
    (ack,) = conn.take_outgoing()
    assert ack.window == 0xFFFF
    # passive: a SYN without the option gets a SYN,ACK without it
    listener = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    send(listener, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    (synack,) = listener.take_outgoing()
    assert synack.options.window_scale is None
    listener2 = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=cfg)
    send(listener2, seg(IRS, None, SYN, options=TcpOptions(mss=MSS, window_scale=2)))
    (synack2,) = listener2.take_outgoing()
    assert synack2.options.window_scale == 5
    send(listener2, seg(IRS + 1, ISS + 1, window=100))
    assert listener2.tcb.snd_wnd == 400


def _in_state(name: str) -> Connection:
    conn = established()
    if name == "ESTABLISHED":
        return conn
    if name == "FIN-WAIT-1":
        conn.close(0.0)
    elif name == "CLOSE-WAIT":
        conn.on_segment(seg(IRS + 1, ISS + 1, FIN), 0.0)
    elif name == "TIME-WAIT":
        conn.close(0.0)
        conn.on_segment(seg(IRS + 1, ISS + 2, FIN), 0.0)
    conn.take_outgoing()
    conn.take_events()
    return conn


FACTORIES: dict[str, Callable[[], Connection]] = {
    "LISTEN": lambda: Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG),
    "SYN-SENT": lambda: Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG),
    **{n: (lambda n=n: _in_state(n)) for n in ("ESTABLISHED", "FIN-WAIT-1", "CLOSE-WAIT",
                                               "TIME-WAIT")},
}

near = st.integers(-70_000, 70_000)
segments = st.builds(
    lambda dseq, dack, flags, window, payload, mss, ws: (dseq, dack, flags, window, payload,
                                                        mss, ws),
    near, near, st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=3000),
    st.none() | st.integers(0, 0xFFFF), st.none() | st.integers(0, 255),
)


@settings(max_examples=150, deadline=None)
@given(state=st.sampled_from(sorted(FACTORIES)), inputs=st.lists(segments, max_size=8),
       t=st.floats(0, 1000))
def test_nothing_a_peer_sends_raises(state: str, inputs: list[tuple], t: float) -> None:
    conn = FACTORIES[state]()
    conn.take_outgoing()
    for dseq, dack, flags, window, payload, mss, ws in inputs:
        s = TcpSegment(REMOTE.port, LOCAL.port, IRS + dseq, ISS + dack, TcpFlags(flags), window,
                       TcpOptions(mss=mss, window_scale=ws), payload)
        conn.on_segment(s, t)
        replies = conn.take_outgoing()
        if flags & RST:
            assert all(not r.flags & RST for r in replies)  # never RST a RST
        conn.on_timer(t + 500)
        conn.take_outgoing()
    assert conn.readable <= CFG.recv_buffer + (1 << 14)
    events_of(conn)


def test_rst_never_answered_with_rst_in_any_state() -> None:
    for name, factory in FACTORIES.items():
        conn = factory()
        conn.take_outgoing()
        for dseq in (-5, 0, 1, 500, 100_000):
            conn.on_segment(seg(IRS + dseq, ISS + 1, RST), 0.0)
            assert all(not r.flags & RST for r in conn.take_outgoing()), name


def test_data_with_syn_in_listen_is_not_delivered(listen: Connection) -> None:
    send(listen, seg(IRS, None, SYN | PSH | FIN, payload=b"early"))
    expect(listen, [out(ISS, IRS + 1, SYN | ACK, options=None)])
    send(listen, seg(IRS + 1, ISS + 1))
    assert listen.state is State.ESTABLISHED and listen.readable == 0
    assert events_of(listen, Error) == []


def test_bare_fin_accepted_in_zero_window(est: Connection) -> None:
    send(est, seg(IRS + 1, ISS + 1, payload=b"f" * 8000))
    est.take_outgoing()
    send(est, seg(IRS + 8001, ISS + 1, FIN))
    assert est.state is State.CLOSE_WAIT
    expect(est, [out(ISS + 1, IRS + 8002, window=0)])
