"""SACK (RFC 2018) and the loss recovery it allows: RFC 6675's scoreboard and pipe,
RACK-TLP (RFC 8985) loss detection and tail loss probes."""

from __future__ import annotations

import pytest
from tcp_harness import (
    ACK,
    IRS,
    ISS,
    MSS,
    PSH,
    SYN,
    established,
    expect,
    out,
    seg,
    send,
)
from tcp_harness import NODELAY as CFG

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.rack import Rack
from userstack.tcp.sack import NOTHING_IN_FLIGHT, Scoreboard
from userstack.tcp.state import State
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpOptions

BIG = 60000
SACK_OK = TcpOptions(mss=MSS, sack_permitted=True)
D = b"d" * 1000


def sack_conn() -> Connection:
    """SACK agreed; SRTT = 0.1 s from the handshake."""
    return established(CFG, peer_window=BIG, peer_options=SACK_OK, rtt=0.1)


def blocks(*edges: tuple[int, int]) -> TcpOptions:
    """SACK blocks relative to our ISS (what the peer reports about our data)."""
    return TcpOptions(sack_blocks=tuple((ISS + a, ISS + b) for a, b in edges))


def four_segments(conn: Connection) -> None:
    conn.send(b"d" * 4000, 0.0)
    got = conn.take_outgoing()
    assert [s.seq - ISS for s in got] == [1, 1001, 2001, 3001]  # IW = 4 SMSS


def test_sack_permitted_only_if_both_syns_carry_it(listen: Connection) -> None:
    """RFC 2018 2: a SYN,ACK offers SACK only in answer to a SYN that did."""
    send(listen, seg(IRS, None, SYN, options=SACK_OK))
    (syn_ack,) = listen.take_outgoing()
    assert syn_ack.options.sack_permitted
    plain = Connection.open_passive(listen.local, listen.remote, iss=ISS, now=0.0, config=CFG)
    send(plain, seg(IRS, None, SYN, options=TcpOptions(mss=MSS)))
    (syn_ack,) = plain.take_outgoing()
    assert not syn_ack.options.sack_permitted


def test_receiver_reports_sack_blocks_latest_first() -> None:
    """RFC 2018 4: the block holding the segment just received comes first, then the
    blocks reported before; blocks merge as holes between them fill."""
    conn = sack_conn()
    send(conn, seg(IRS + 1001, ISS + 1, payload=D))
    expect(conn, [out(ISS + 1, IRS + 1, options=TcpOptions(
        sack_blocks=((IRS + 1001, IRS + 2001),)))])
    send(conn, seg(IRS + 3001, ISS + 1, payload=D))
    expect(conn, [out(ISS + 1, IRS + 1, options=TcpOptions(
        sack_blocks=((IRS + 3001, IRS + 4001), (IRS + 1001, IRS + 2001))))])
    send(conn, seg(IRS + 2001, ISS + 1, payload=D))  # joins the two blocks
    expect(conn, [out(ISS + 1, IRS + 1, options=TcpOptions(
        sack_blocks=((IRS + 1001, IRS + 4001),)))])
    send(conn, seg(IRS + 1, ISS + 1, payload=D))  # fills the hole: no block left
    expect(conn, [out(ISS + 1, IRS + 4001, options=TcpOptions())])


def test_no_sack_blocks_unless_negotiated() -> None:
    conn = established(CFG, peer_window=BIG)  # the peer's SYN had no SACK-permitted
    send(conn, seg(IRS + 1001, ISS + 1, payload=D))
    expect(conn, [out(ISS + 1, IRS + 1, options=TcpOptions())])


def test_sack_blocks_ride_on_a_pure_ack_before_data() -> None:
    """A full-sized data segment has no room for a SACK option within the MTU, so the
    blocks go first on their own ACK, and the data follows."""
    conn = sack_conn()
    conn.sender.cc.cwnd = 1000
    conn.send(b"d" * 2000, 0.0)
    expect(conn, [out(ISS + 1, IRS + 1, payload=D)])  # cwnd holds the rest
    send(conn, seg(IRS + 1001, ISS + 1001, payload=D))  # ACKs it, and is out of order
    got = conn.take_outgoing()
    assert [(len(s.payload), s.options.sack_blocks) for s in got] == [
        (0, ((IRS + 1001, IRS + 2001),)), (1000, ())
    ]


def test_rack_marks_the_hole_lost_after_the_reordering_window() -> None:
    """RFC 8985 6.2: segment 1 is lost once segment 2, sent after it, is SACKed and
    RACK.rtt + RACK.reo_wnd has passed since segment 1 went out; only the hole is
    resent (RFC 6675 5 (4.3)), and ssthresh halves; PRR (RFC 6937) holds cwnd at pipe
    until ACKs report deliveries, and the recovery ends with cwnd = ssthresh."""
    conn = sack_conn()
    four_segments(conn)
    send(conn, seg(IRS + 1, ISS + 1, window=BIG, options=blocks((1001, 2001))), at=0.1)
    expect(conn, [])
    # reo_wnd = min_RTT / 4 = 0.025: the RACK timer runs until 0 + 0.1 + 0.025
    assert conn.next_deadline() == 0.125
    conn.on_timer(0.125)
    expect(conn, [out(ISS + 1, IRS + 1, payload=D)])
    info = conn.info(0.125)
    assert (info.cwnd, info.ssthresh) == (3000, 2000)  # cwnd = pipe + sndcnt = 3000 + 0
    send(conn, seg(IRS + 1, ISS + 4001, window=BIG), at=0.2)
    assert not conn.sender.recovery.in_recovery  # the ACK passed RecoveryPoint
    assert conn.info(0.2).cwnd == 2000


def test_rto_does_not_resend_what_was_sacked() -> None:
    """RFC 6675 5.1: after an RTO, resend in slow start everything not SACKed; the
    scoreboard is kept, so segment 3 (SACKed) is never sent again."""
    conn = sack_conn()
    four_segments(conn)
    send(conn, seg(IRS + 1, ISS + 1, window=BIG, options=blocks((2001, 3001))), at=0.1)
    conn.on_timer(0.125)  # RACK: segments 1 and 2 lost; 1 resent at once
    expect(conn, [out(ISS + 1, IRS + 1, payload=D)])
    deadline = conn.next_deadline()
    assert deadline is not None
    conn.on_timer(deadline)  # the RTO: cwnd = 1 SMSS, only the first segment goes
    expect(conn, [out(ISS + 1, IRS + 1, payload=D)])
    send(conn, seg(IRS + 1, ISS + 1001, window=BIG, options=blocks((2001, 3001))),
         at=deadline + 0.1)
    # cwnd 2 SMSS: segment 2, then segment 4; segment 3 is skipped
    expect(conn, [out(ISS + 1001, IRS + 1, payload=D),
                  out(ISS + 3001, IRS + 1, PSH | ACK, payload=D)])


def test_tail_loss_probe_resends_the_last_segment() -> None:
    """RFC 8985 7: the last segments' ACKs never come: after PTO = 2*SRTT (+ the
    worst-case delayed ACK, one segment being in flight) probe with the last segment."""
    conn = sack_conn()
    conn.send(b"d" * 2000, 0.0)
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 1001, window=BIG), at=0.1)  # SRTT stays 0.1
    expect(conn, [])
    assert conn.next_deadline() == pytest.approx(0.1 + 2 * 0.1 + 0.2)
    conn.on_timer(0.5)
    expect(conn, [out(ISS + 1001, IRS + 1, PSH | ACK, payload=D)])
    assert conn.next_deadline() == 0.5 + conn.info(0.5).rto  # the RTO is re-armed


def test_tail_loss_probe_sends_new_data_when_it_can() -> None:
    conn = sack_conn()
    conn.sender.cc.cwnd = 1000
    conn.send(b"d" * 1500, 0.0)
    expect(conn, [out(ISS + 1, IRS + 1, payload=D)])  # cwnd holds the other 500
    assert conn.next_deadline() == pytest.approx(2 * 0.1 + 0.2)
    conn.on_timer(0.4)
    expect(conn, [out(ISS + 1001, IRS + 1, PSH | ACK, payload=b"d" * 500)])


def test_rack_detects_a_lost_retransmission() -> None:
    """RFC 8985 2.2: a retransmission is lost too if a segment sent after it is
    delivered and it is not, RACK.rtt + reo_wnd later (no RTO needed)."""
    board = Scoreboard()
    board.sent(SeqNum(1), SeqNum(1001), 0.0)
    board.sent(SeqNum(1001), SeqNum(2001), 1.1)
    board.resent(SeqNum(1), SeqNum(1001), 1.0)  # the first one, resent at 1.0
    rack = Rack(SeqNum(1))
    rack.delivered(board.sack(((SeqNum(1001), SeqNum(2001)),), SeqNum(1)), 1.2)
    assert rack.rtt == pytest.approx(0.1)  # from the segment sent at 1.1
    # the retransmission (1.0) went out before it: lost once 1.0 + RACK.rtt + reo_wnd passed
    assert rack.detect_loss(board, 1.2, 0.15) == pytest.approx(0.05)  # not yet: the timer
    assert not board.segments[0].lost
    assert rack.detect_loss(board, 1.25, 0.15) == 0
    assert board.segments[0].lost and board.lost == 1000
    assert board.pipe(2000) == 0  # lost and SACKed octets have left the pipe


def test_the_shared_empty_scoreboard_is_never_written() -> None:
    """Every connection with nothing in flight shares NOTHING_IN_FLIGHT (issue 13): each
    method a sender or its recovery may call with nothing in flight leaves it untouched,
    and recording a segment in it is refused."""
    board = NOTHING_IN_FLIGHT
    una = SeqNum(1000)
    assert board.acked(una) == []
    assert board.sack(((SeqNum(1000), SeqNum(2000)), (SeqNum(1), SeqNum(500))), una) == []
    assert not board.reneged()
    board.resent(una, una + 1000, 1.0)
    board.mark_all_lost()
    board.split_lost(500)
    assert board.first_lost(una + 1000) is None and board.last() is None
    assert board.sacked_from(una) is None and board.unsacked_run(una, una + 10) == una + 10
    assert board.pipe(0) == 0 and board.empty
    assert (board.segments, board.sacked, board.sacked_segments, board.lost) == ((), 0, 0, 0)
    with pytest.raises(AssertionError):
        board.sent(una, una + 1000, 1.0)


def test_a_sender_holds_a_scoreboard_only_while_something_is_in_flight() -> None:
    conn = sack_conn()
    assert conn.sender.board is NOTHING_IN_FLIGHT  # idle after the handshake
    four_segments(conn)
    board = conn.sender.board
    assert board is not NOTHING_IN_FLIGHT and len(board.segments) == 4
    send(conn, seg(IRS + 1, ISS + 2001, window=BIG), 0.2)
    assert conn.sender.board is board and len(board.segments) == 2  # half still in flight
    send(conn, seg(IRS + 1, ISS + 4001, window=BIG), 0.3)
    assert conn.sender.board is NOTHING_IN_FLIGHT


def rcv(*edges: tuple[int, int]) -> TcpOptions:
    """SACK blocks relative to the peer's IRS (what we report about its data)."""
    return TcpOptions(sack_blocks=tuple((IRS + a, IRS + b) for a, b in edges))


def test_receiver_reports_a_duplicate_in_the_first_block() -> None:
    """RFC 2883 4: D-SACK. A duplicate below RCV.NXT is the first (and only new) block,
    reported once (4.1.1); a duplicate of held data comes first, then the block holding
    it (4.1.3); a segment partly old reports its old part."""
    conn = sack_conn()
    send(conn, seg(IRS + 1, ISS + 1, payload=D))
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 1, payload=D))  # all old: a spurious retransmission
    expect(conn, [out(ISS + 1, IRS + 1001, options=rcv((1, 1001)))])
    send(conn, seg(IRS + 2001, ISS + 1, payload=D))  # a hole at 1001
    expect(conn, [out(ISS + 1, IRS + 1001, options=rcv((2001, 3001)))])  # D-SACK once
    send(conn, seg(IRS + 2001, ISS + 1, payload=D))  # a duplicate of held data
    expect(conn, [out(ISS + 1, IRS + 1001, options=rcv((2001, 3001), (2001, 3001)))])
    send(conn, seg(IRS + 501, ISS + 1, payload=D))  # half old, half new: fills to 1501
    expect(conn, [out(ISS + 1, IRS + 1501, options=rcv((501, 1001), (2001, 3001)))])


def test_no_dsack_without_sack() -> None:
    conn = established(CFG, peer_window=BIG)
    send(conn, seg(IRS + 1, ISS + 1, payload=D))
    send(conn, seg(IRS + 1, ISS + 1, payload=D))
    expect(conn, [out(ISS + 1, IRS + 1001), out(ISS + 1, IRS + 1001, options=TcpOptions())])


def test_a_window_reopened_too_little_for_any_repair_keeps_a_timer() -> None:
    """Found by a fuzz run: a zero window stops the retransmission timer; the window
    then opens to 1 with a SACK that sends RACK into recovery, no lost piece fits and
    nothing new is left (the FIN went out). Some timer must still watch the data and the
    FIN (RFC 6298 5.1), or the connection waits forever; its RTO resends from SND.UNA."""
    cfg = TcpConfig(mss=MSS, delayed_ack=0.0, nagle=False)
    conn = established(cfg, peer_window=500, peer_options=TcpOptions(mss=MSS, sack_permitted=True))
    conn.send(b"w" * 1000, 0.0)
    conn.close(0.0)
    send(conn, seg(IRS + 1, ISS + 759, window=0), at=0.1)  # acks what was never sent
    conn.on_timer(0.2)  # the tail loss probe
    send(conn, seg(IRS + 1, ISS + 544, window=4000), at=0.3)
    send(conn, seg(IRS + 1, ISS + 19, window=4000), at=0.301)  # the rest and the FIN go
    send(conn, seg(IRS + 1, ISS + 379, window=0,
                   options=TcpOptions(sack_blocks=((ISS + 241, ISS + 357),))), at=0.302)
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 379, window=1,
                   options=TcpOptions(sack_blocks=((ISS + 205, ISS + 826),))), at=0.303)
    assert conn.take_outgoing() == []
    assert conn.state is State.FIN_WAIT_1
    assert (conn.tcb.snd_una, conn.tcb.snd_nxt) == (ISS + 379, ISS + 1002)
    deadline = conn.next_deadline()
    assert deadline == pytest.approx(0.303 + conn.sender.rtt.rto)
    conn.on_timer(deadline)
    assert [s.seq for s in conn.take_outgoing()][:1] == [ISS + 379]
