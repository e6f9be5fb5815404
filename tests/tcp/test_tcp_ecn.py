"""RFC 3168 6.1 for TCP: the object alone (negotiation flags, the receiver's ECE echo until
CWR, the sender's one reduction per window and its CWR), then on a connection, segment by
segment: the SYNs that agree or refuse, ECT(0) on new data only, the echo, the reduction."""

from __future__ import annotations

from dataclasses import replace

from tcp_harness import (
    ACK,
    FIN,
    IRS,
    ISS,
    LOCAL,
    MSS,
    NODELAY,
    PSH,
    REMOTE,
    SYN,
    expect,
    expect_nothing,
    out,
    seg,
    send,
)

from userstack.tcp.config import EcnMode, TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.ecn import CWR, ECE, EcnState, is_ecn_setup_syn, is_ecn_setup_syn_ack
from userstack.tcp.rules import Explainer, Rule
from userstack.tcp.state import State
from userstack.wire.ipv4 import Ecn as Codepoint
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpOptions


def test_setup_segments() -> None:
    assert is_ecn_setup_syn(SYN | ECE | CWR)
    assert not is_ecn_setup_syn(SYN | ECE)  # both bits, or it is not a request
    assert not is_ecn_setup_syn(SYN | ACK | ECE | CWR)  # a SYN-ACK is not a SYN
    assert is_ecn_setup_syn_ack(SYN | ACK | ECE)
    # a SYN-ACK with both bits set is what a host that does not understand ECN sends by
    # reflecting the SYN's flags: not an agreement (RFC 3168 6.1.1)
    assert not is_ecn_setup_syn_ack(SYN | ACK | ECE | CWR)
    assert not is_ecn_setup_syn_ack(SYN | ACK)


def test_receiver_echoes_ece_until_cwr() -> None:
    ecn = EcnState(SeqNum(0))
    assert ecn.ack_flags() == 0
    ecn.on_arrival(ce=False, cwr=False)
    assert ecn.ack_flags() == 0
    assert ecn.on_arrival(ce=True, cwr=False)  # congestion experienced: the echo starts
    for _ in range(3):  # every ACK, also for later unmarked data
        assert ecn.ack_flags() == ECE
        assert not ecn.on_arrival(ce=False, cwr=False)
    assert not ecn.on_arrival(ce=True, cwr=False)  # already echoing: nothing new
    ecn.on_arrival(ce=False, cwr=True)  # the sender has reduced
    assert ecn.ack_flags() == 0
    ecn.on_arrival(ce=True, cwr=True)  # a CWR packet itself marked: echo again
    assert ecn.ack_flags() == ECE


def test_sender_reduces_once_per_window_and_sets_cwr_once() -> None:
    ecn = EcnState(SeqNum(1000))
    assert ecn.take_cwr() == 0
    assert ecn.on_ece(SeqNum(2000), SeqNum(11000))  # reduce; recover = SND.NXT
    assert ecn.take_cwr() == CWR and ecn.take_cwr() == 0  # on the next new data only
    # more ECEs for the same window of data: no further reduction, also for the ACK
    # of all of it (the CWR segment, sent at 11000, has not been acknowledged yet)
    assert not ecn.on_ece(SeqNum(5000), SeqNum(15000))
    assert not ecn.on_ece(SeqNum(11000), SeqNum(16000))
    assert ecn.take_cwr() == 0
    assert ecn.on_ece(SeqNum(11001), SeqNum(20000))  # beyond it: reduce again
    assert ecn.reductions == 2 and ecn.take_cwr() == CWR


# ---- on a connection: negotiation (RFC 3168 6.1.1) --------------------------------------

ECN_ON = replace(NODELAY, ecn=EcnMode.ON)


def ecn_established(config: TcpConfig = ECN_ON, peer_window: int = 60000) -> Connection:
    """Actively opened with an ECN-setup SYN, answered by an ECN-setup SYN,ACK."""
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=config)
    (syn,) = conn.take_outgoing()
    assert syn.flags == SYN | ECE | CWR and syn.ecn is Codepoint.NOT_ECT
    send(conn, seg(IRS, ISS + 1, SYN | ECE, window=peer_window, options=TcpOptions(mss=MSS)))
    conn.take_outgoing()
    conn.take_events()
    assert conn.sender.ecn is not None
    return conn


def test_active_open_asks_and_an_ece_syn_ack_agrees() -> None:
    conn = ecn_established()
    conn.send(b"x" * 1500, 0.0)
    data = expect(conn, [out(ISS + 1, IRS + 1, ACK, payload=b"x" * 1000),
                         out(ISS + 1001, IRS + 1, ACK | PSH, payload=b"x" * 500)])
    assert [s.ecn for s in data] == [Codepoint.ECT_0] * 2  # data is ECN-capable (6.1.2)


def test_a_syn_ack_with_ece_and_cwr_is_no_agreement() -> None:
    """A host that does not know ECN may reflect the SYN's reserved flags: ECE with CWR in
    a SYN,ACK is not an ECN-setup SYN,ACK (RFC 3168 6.1.1)."""
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=ECN_ON)
    conn.take_outgoing()
    send(conn, seg(IRS, ISS + 1, SYN | ECE | CWR, options=TcpOptions(mss=MSS)))
    assert conn.state is State.ESTABLISHED and conn.sender.ecn is None
    conn.take_outgoing()
    conn.send(b"x", 0.0)
    (data,) = conn.take_outgoing()
    assert data.ecn is Codepoint.NOT_ECT and not data.flags & (ECE | CWR)


def test_by_default_we_do_not_ask_but_agree_when_asked() -> None:
    """TcpConfig().ecn is ACCEPT, as Linux's tcp_ecn=2: a plain SYN, and an ECN-setup
    SYN,ACK (ECE alone, not ECT) for a peer's ECN-setup SYN."""
    active = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=NODELAY)
    (syn,) = active.take_outgoing()
    assert syn.flags == SYN
    listen = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=NODELAY)
    send(listen, seg(IRS, None, SYN | ECE | CWR, options=TcpOptions(mss=MSS)))
    (syn_ack,) = expect(listen, [out(ISS, IRS + 1, SYN | ACK | ECE, options=None)])
    assert syn_ack.ecn is Codepoint.NOT_ECT  # never ECT on a SYN,ACK (6.1.1)
    send(listen, seg(IRS + 1, ISS + 1, ACK))
    assert listen.state is State.ESTABLISHED and listen.sender.ecn is not None


def test_ecn_off_refuses_an_ecn_setup_syn() -> None:
    listen = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0,
                                     config=replace(NODELAY, ecn=EcnMode.OFF))
    send(listen, seg(IRS, None, SYN | ECE | CWR, options=TcpOptions(mss=MSS)))
    expect(listen, [out(ISS, IRS + 1, SYN | ACK, options=None)])
    send(listen, seg(IRS + 1, ISS + 1, ACK))
    assert listen.state is State.ESTABLISHED and listen.sender.ecn is None
    listen.send(b"x", 0.0)
    (data,) = listen.take_outgoing()
    assert data.ecn is Codepoint.NOT_ECT


def test_a_plain_syn_is_answered_with_a_plain_syn_ack() -> None:
    listen = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=ECN_ON)
    send(listen, seg(IRS, None, SYN | ECE, options=TcpOptions(mss=MSS)))  # ECE alone: no
    expect(listen, [out(ISS, IRS + 1, SYN | ACK, options=None)])


def test_the_retransmitted_syn_gives_ecn_up() -> None:
    """RFC 3168 6.1.1.1: the ECN-setup SYN may have met a middlebox that drops them; the
    retransmission asks for nothing, and then an ECE SYN,ACK (to the first) is no
    agreement: we have sent a non-ECN-setup SYN."""
    why = Explainer()
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=ECN_ON, explain=why)
    (first,) = conn.take_outgoing()
    assert first.flags == SYN | ECE | CWR
    conn.on_timer(1.0)
    (again,) = conn.take_outgoing()
    assert again.flags == SYN
    assert Rule.ECN_SYN_FALLBACK in [d.rule for d in why.take()]
    send(conn, seg(IRS, ISS + 1, SYN | ECE, options=TcpOptions(mss=MSS)), at=1.1)
    assert conn.state is State.ESTABLISHED and conn.sender.ecn is None


# ---- ECT(0) on new data only (RFC 3168 6.1.5, 6.1.6) ------------------------------------


def test_no_ect_on_retransmissions_probes_fins_or_pure_acks() -> None:
    conn = ecn_established(peer_window=60000)
    conn.send(b"a" * 1000, 0.0)
    (first,) = conn.take_outgoing()
    assert first.ecn is Codepoint.ECT_0
    conn.on_timer(1.0)  # the RTO: the same data again
    (resent,) = conn.take_outgoing()
    assert resent.seq == first.seq and resent.ecn is Codepoint.NOT_ECT
    send(conn, seg(IRS + 1, ISS + 1001, ACK, window=0, payload=b"p" * 10), at=1.1)
    (ack,) = conn.take_outgoing()  # a pure ACK of the peer's data
    assert not ack.payload and ack.ecn is Codepoint.NOT_ECT
    conn.send(b"b" * 100, 1.2)
    conn.on_timer(conn.next_deadline() or 0.0)  # the zero-window probe
    probes = [s for s in conn.take_outgoing() if s.payload]
    assert probes and all(s.ecn is Codepoint.NOT_ECT for s in probes)
    probed_to = conn.tcb.snd_nxt
    send(conn, seg(IRS + 11, ISS + 1001, ACK, window=60000), at=10.0)
    sent = conn.take_outgoing()  # "b" again from the probe's byte: partly a retransmission
    assert sent and sent[0].seq < probed_to and sent[0].ecn is Codepoint.NOT_ECT
    conn.send(b"c" * 100, 10.0)
    sent = conn.take_outgoing()
    assert [s.payload for s in sent if s.ecn is Codepoint.ECT_0] == [b"c" * 100]
    send(conn, seg(IRS + 11, conn.tcb.snd_nxt, ACK, window=60000), at=10.1)
    assert conn.receive(100, 10.1) == b"p" * 10
    conn.take_outgoing()
    conn.close(10.1)
    (fin,) = conn.take_outgoing()  # a FIN alone carries no data: not ECT
    assert fin.flags & FIN and fin.ecn is Codepoint.NOT_ECT


# ---- the receiver echoes CE until CWR (RFC 3168 6.1.3) ----------------------------------


def test_ce_is_echoed_on_every_ack_until_cwr() -> None:
    """Delayed ACKs on: the first CE mark is ACKed at once; ECE then rides on every ACK,
    the delayed ones too, until the sender's CWR arrives."""
    conn = ecn_established(replace(ECN_ON, delayed_ack=0.2))
    data = b"d" * MSS
    ce = replace(seg(IRS + 1, ISS + 1, ACK, payload=data), ecn=Codepoint.CE)
    send(conn, ce, at=0.0)
    expect(conn, [out(ISS + 1, IRS + 1 + MSS, ACK | ECE)])  # at once
    send(conn, seg(IRS + 1 + MSS, ISS + 1, ACK, payload=data), at=0.01)
    expect_nothing(conn)  # delayed as usual
    send(conn, seg(IRS + 1 + 2 * MSS, ISS + 1, ACK, payload=data), at=0.02)
    expect(conn, [out(ISS + 1, IRS + 1 + 3 * MSS, ACK | ECE)])  # every second segment
    send(conn, seg(IRS + 1 + 3 * MSS, ISS + 1, ACK, payload=data), at=0.03)
    conn.on_timer(0.23)
    expect(conn, [out(ISS + 1, IRS + 1 + 4 * MSS, ACK | ECE)])  # the delayed ACK too
    send(conn, seg(IRS + 1 + 4 * MSS, ISS + 1, ACK | CWR, payload=data), at=0.3)
    send(conn, seg(IRS + 1 + 5 * MSS, ISS + 1, ACK, payload=data), at=0.31)
    expect(conn, [out(ISS + 1, IRS + 1 + 6 * MSS, ACK)])  # CWR arrived: no more ECE


def test_no_echo_without_ecn() -> None:
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=NODELAY)
    conn.take_outgoing()
    send(conn, seg(IRS, ISS + 1, SYN, options=TcpOptions(mss=MSS)))
    conn.take_outgoing()
    send(conn, replace(seg(IRS + 1, ISS + 1, ACK, payload=b"d"), ecn=Codepoint.CE))
    expect(conn, [out(ISS + 1, IRS + 2, ACK)])


# ---- the sender reduces once per window, then sends CWR (RFC 3168 6.1.2) ----------------


def test_one_reduction_per_window_and_cwr_on_the_next_new_data() -> None:
    why = Explainer()
    conn = ecn_established()
    conn._why = conn.sender.why = why
    cc = conn.sender.cc
    cc.cwnd = 10 * MSS
    conn.send(b"w" * 30000, 0.0)
    assert len(conn.take_outgoing()) == 10  # ISS+1 .. ISS+10001 in flight
    recover = ISS + 1 + 10 * MSS
    # the first ECE: ssthresh = cwnd = FlightSize / 2 (NewReno), nothing retransmitted
    send(conn, seg(IRS + 1, ISS + 1 + MSS, ACK | ECE, window=60000), at=0.1)
    assert (cc.cwnd, cc.ssthresh) == (5 * MSS, 5 * MSS)
    assert Rule.ECN_REDUCE in [d.rule for d in why.take()]
    assert conn.take_outgoing() == []  # 9 segments in flight, cwnd 5: wait
    # the rest of the window's ACKs still carry ECE: no second reduction, no growth
    sent = []
    for k in range(2, 11):
        send(conn, seg(IRS + 1, ISS + 1 + k * MSS, ACK | ECE, window=60000), at=0.1 + k / 100)
        sent += conn.take_outgoing()
    assert conn.sender.ecn is not None and conn.sender.ecn.reductions == 1
    assert cc.cwnd == 5 * MSS
    # no retransmission: only new data, from `recover` on, CWR on the first of it
    assert [s.seq for s in sent] == [recover + i * MSS for i in range(len(sent))]
    assert [bool(s.flags & CWR) for s in sent] == [True] + [False] * (len(sent) - 1)
    rules = [d.rule for d in why.take()]
    assert Rule.ECN_ECE_IGNORED in rules and Rule.ECN_REDUCE not in rules
    # the next window: an ECE for data sent after the reduction reduces again
    send(conn, seg(IRS + 1, recover + MSS, ACK | ECE, window=60000), at=0.3)
    assert conn.sender.ecn.reductions == 2 and cc.ssthresh < 5 * MSS


def test_cwr_rides_on_the_first_new_data_segment_only() -> None:
    conn = ecn_established()
    conn.sender.cc.cwnd = 4 * MSS
    conn.send(b"c" * 8000, 0.0)
    assert len(conn.take_outgoing()) == 4
    send(conn, seg(IRS + 1, ISS + 1 + 2 * MSS, ACK | ECE, window=60000), at=0.1)
    assert conn.sender.cc.cwnd == 2 * MSS  # FlightSize 4 segments, halved
    send(conn, seg(IRS + 1, ISS + 1 + 4 * MSS, ACK | ECE, window=60000), at=0.2)
    sent = conn.take_outgoing()
    assert [(s.seq, bool(s.flags & CWR), s.ecn) for s in sent] == [
        (ISS + 1 + 4 * MSS, True, Codepoint.ECT_0), (ISS + 1 + 5 * MSS, False, Codepoint.ECT_0)
    ]


def test_info_says_ecn_and_ecnseen_once_an_ect_packet_arrives() -> None:
    """TcbInfo.ecn: the SYNs agreed; .ecn_seen: a data packet marked ECT (or CE) has
    arrived since, as Linux's TCPI_OPT_ECN_SEEN (`ss -io`: ecn ecnseen)."""
    conn = ecn_established()
    info = conn.info(0.0)
    assert (info.ecn, info.ecn_seen) == (True, False)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"plain"))  # not ECT: nothing seen yet
    assert conn.info(0.0).ecn_seen is False
    send(conn, replace(seg(IRS + 6, ISS + 1, payload=b"ect"), ecn=Codepoint.ECT_0))
    assert conn.info(0.0).ecn_seen is True
    plain = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=NODELAY)
    send(plain, seg(IRS, ISS + 1, SYN, options=TcpOptions(mss=MSS)))
    assert (plain.info(0.0).ecn, plain.info(0.0).ecn_seen) == (False, False)
