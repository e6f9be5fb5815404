"""The compact TIME-WAIT record (tcp/time_wait.py) answers every segment as a Connection
in TIME-WAIT does (RFC 9293 3.10.7.4, RFC 1337, RFC 5961), and names the same rules for it,
in 256 bytes or less."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_harness import ACK, CFG, FIN, IRS, ISS, LOCAL, MSS, REMOTE, RST, SYN, established, seg

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.rules import Decision, Explainer, Rule
from userstack.tcp.state import State
from userstack.tcp.time_wait import TimeWait
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

SCALED = TcpConfig(mss=MSS, delayed_ack=0.0, msl=10.0, timestamps=False)  # shift 3
PEER_TS = 100  # the TSval of the peer's SYN,ACK; its later segments count up from it
CONFIGS = {"unscaled": (CFG, TcpOptions(mss=MSS)),
           "scaled": (SCALED, TcpOptions(mss=MSS, window_scale=7)),
           "timestamps": (replace(CFG, timestamps=True),
                          TcpOptions(mss=MSS, timestamps=(PEER_TS, 0)))}


def peer_ts(options: TcpOptions, tsval: int | None) -> TcpOptions:
    """The TSopt of one of the peer's segments, if the SYNs agreed on timestamps."""
    if options.timestamps is None or tsval is None:
        return TcpOptions()
    return TcpOptions(timestamps=(tsval, 0))


def time_wait(
    config: TcpConfig, options: TcpOptions, why: Explainer | None = None
) -> Connection:
    """We closed first: FIN-WAIT-1, our FIN acknowledged, the peer's FIN: TIME-WAIT at 0.
    With `why`, the connection names its rules to it (those of getting here taken)."""
    if why is None:
        conn = established(config, peer_options=options)
    else:
        conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=config,
                                      explain=why)
        conn.on_segment(seg(IRS, ISS + 1, SYN, options=options), 0.0)
    conn.close(0.0)
    conn.on_segment(seg(IRS + 1, ISS + 2, options=peer_ts(options, PEER_TS + 1)), 0.0)
    conn.on_segment(seg(IRS + 1, ISS + 2, FIN, options=peer_ts(options, PEER_TS + 2)), 0.0)
    assert conn.state is State.TIME_WAIT
    conn.take_outgoing()
    conn.take_events()
    if why is not None:
        why.take()
    return conn


def record_of(conn: Connection) -> TimeWait:
    expiry = conn.next_deadline()
    assert expiry is not None
    return TimeWait.from_tcb(conn.tcb, expiry, conn.timestamps)


def answer(
    record: TimeWait, s: TcpSegment, now: float, config: TcpConfig,
    why: Explainer | None = None,
) -> list[TcpSegment]:
    reply = record.on_segment(s, now, 2 * config.msl, config.challenge_ack_limit, why)
    return [] if reply is None else [reply]


def named_as_a_connection_names(decisions: list[Decision]) -> list[Decision]:
    """A Connection's decisions but the one a record cannot name: it keeps no send window
    (tcp/time_wait.py), and there is nothing to send into it in TIME-WAIT anyway."""
    return [d for d in decisions if d.rule is not Rule.WINDOW_UPDATE]


FLAGS = st.sampled_from([ACK, RST, SYN, FIN | ACK, RST | ACK, SYN | ACK, FIN, TcpFlags(0),
                         SYN | FIN, ACK | TcpFlags.PSH])


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=200, deadline=None)
@given(flags=FLAGS, seq_off=st.integers(-70_000, 70_000) | st.integers(-2**31, 2**31 - 1),
       ack_off=st.integers(-8000, 2**31 - 1), payload=st.binary(max_size=3),
       at=st.floats(0.0, 19.0), tsval=st.none() | st.integers(PEER_TS, PEER_TS + 4))
def test_the_record_answers_as_the_connection_does(
    name: str, flags: TcpFlags, seq_off: int, ack_off: int, payload: bytes, at: float,
    tsval: int | None,
) -> None:
    """Any one segment: the same reply (or none), the same 2*MSL deadline after it, and
    the same rules named, with the same values. (ACKs older than SND.UNA - MAX.SND.WND
    are left out: see the module's departures.)"""
    config, options = CONFIGS[name]
    conn_why, record_why = Explainer(), Explainer()
    conn = time_wait(config, options, conn_why)
    record = record_of(conn)
    s = seg(IRS + 2 + seq_off, ISS + 2 + ack_off, flags, payload=payload,
            options=peer_ts(options, tsval))  # older, as old, newer than TS.Recent, none
    conn.on_segment(s, at)
    assert answer(record, s, at, config, record_why) == conn.take_outgoing()
    assert record.expiry == conn.next_deadline()
    decisions = record_why.take()
    assert decisions == named_as_a_connection_names(conn_why.take())
    assert decisions  # every segment gets at least one decision


def test_the_record_names_the_time_wait_rules() -> None:
    """A retransmitted FIN, a RST in the window, an old SYN: rule by rule."""
    record = record_of(time_wait(CFG, TcpOptions(mss=MSS)))
    why = Explainer()
    answer(record, seg(IRS + 1, ISS + 2, FIN), 5.0, CFG, why)
    assert [d.rule for d in why.take()] == [Rule.TIME_WAIT_FIN_AGAIN, Rule.NOT_ACCEPTABLE]
    answer(record, seg(IRS + 2, None, RST), 6.0, CFG, why)
    assert [d.rule for d in why.take()] == [Rule.ACCEPTABLE, Rule.RST_TIME_WAIT_IGNORED]
    answer(record, seg(IRS + 2, None, SYN), 7.0, CFG, why)
    acceptable, challenge = why.take()
    assert acceptable.rule is Rule.ACCEPTABLE
    assert challenge == Decision(Rule.SYN_CHALLENGE, (("seg_seq", IRS + 2),))


def test_a_retransmitted_fin_is_acked_again_and_restarts_2msl() -> None:
    record = record_of(time_wait(CFG, TcpOptions(mss=MSS)))
    assert record.expiry == 2 * CFG.msl
    [ack] = answer(record, seg(IRS + 1, ISS + 2, FIN), 5.0, CFG)
    assert (ack.seq, ack.ack, ack.flags) == (ISS + 2, IRS + 2, ACK)
    assert record.expiry == 5.0 + 2 * CFG.msl


def test_rst_is_ignored_and_syns_get_rate_limited_challenge_acks() -> None:
    record = record_of(time_wait(CFG, TcpOptions(mss=MSS)))
    assert answer(record, seg(IRS + 2, None, RST), 1.0, CFG) == []  # RFC 1337
    old_syn = seg(IRS + 2, None, SYN)  # in the window, not above RCV.NXT: RFC 5961 4
    assert len(answer(record, old_syn, 1.0, CFG)) == 1
    assert answer(record, old_syn, 1.05, CFG) == []  # RFC 5961 7: 10 a second at most
    assert len(answer(record, old_syn, 1.1, CFG)) == 1
    assert len(answer(record, seg(IRS - 5, None, SYN), 1.11, CFG)) == 1  # out of window: ACK
    assert record.accepts_new_syn(seg(IRS + 1000, None, SYN))
    assert not record.accepts_new_syn(old_syn)
    assert record.new_incarnation_iss(SeqNum(1)) == ISS + 3  # RFC 1122 4.2.2.13 (a)


# ---- RFC 6191 2: which SYN may take a TIME-WAIT four-tuple over, and what the others get

TS_CONFIG, TS_OPTIONS = CONFIGS["timestamps"]
RECENT = PEER_TS + 2  # TS.Recent in TIME-WAIT: the TSval of the peer's FIN
RCV_NXT = IRS + 2  # after the peer's SYN and FIN
TWO_MSL = 2 * TS_CONFIG.msl


@pytest.mark.parametrize(("tsval", "seq_off"), [
    (RECENT - 1, -1000), (RECENT - 1, 0), (RECENT - 1, 1000),  # older: whatever SEG.SEQ
    (RECENT, -1000), (RECENT, 0),  # as old, and not beyond RCV.NXT
    (None, -1000), (None, 0),  # none, and not beyond RCV.NXT
])
def test_a_syn_that_may_not_take_the_four_tuple_over_is_dropped_silently(
    tsval: int | None, seq_off: int
) -> None:
    """RFC 6191 2, the old incarnation used timestamps: "Otherwise, silently drop the
    incoming SYN segment, thus leaving the previous incarnation of the connection in the
    TIME-WAIT state": no ACK (neither PAWS's nor RFC 5961's challenge), TS.Recent and
    2*MSL untouched; the record and the Connection alike, one rule named."""
    conn_why, record_why = Explainer(), Explainer()
    conn = time_wait(TS_CONFIG, TS_OPTIONS, conn_why)
    record = record_of(conn)
    s = seg(RCV_NXT + seq_off, None, SYN, options=peer_ts(TS_OPTIONS, tsval))
    assert record.new_incarnation_rule(s) is None and not conn.accepts_new_syn(s)
    conn.on_segment(s, 5.0)
    assert conn.take_outgoing() == []
    assert conn.state is State.TIME_WAIT and conn.next_deadline() == TWO_MSL
    assert conn.timestamps is not None and conn.timestamps.ts_recent == RECENT
    assert answer(record, s, 5.0, TS_CONFIG, record_why) == []
    assert record.expiry == TWO_MSL and record.ts_recent == RECENT
    dropped = Decision(Rule.TIME_WAIT_OLD_SYN, (
        ("seg_tsval", tsval), ("ts_recent", RECENT), ("seg_seq", s.seq), ("rcv_nxt", RCV_NXT)))
    assert record_why.take() == [dropped] == conn_why.take()


@pytest.mark.parametrize(("tsval", "seq_off", "timestamps", "rule"), [
    (RECENT + 1, -1000, True, Rule.NEW_INCARNATION_TIMESTAMP),  # newer: whatever SEG.SEQ
    (RECENT, 1, True, Rule.NEW_INCARNATION_TIMESTAMP),  # as old, beyond RCV.NXT
    (None, 1, True, Rule.NEW_INCARNATION),  # no TSopt: by SEG.SEQ alone
    (RECENT + 1, 1, False, Rule.NEW_INCARNATION),  # we would not use them: by SEG.SEQ
    (RECENT + 1, 0, False, None),  # ... and not beyond RCV.NXT
])
def test_which_syn_may_take_a_four_tuple_with_timestamps_over(
    tsval: int | None, seq_off: int, timestamps: bool, rule: Rule | None
) -> None:
    """RFC 6191 2's cases for an old incarnation with timestamps; `timestamps`: would the
    new incarnation use them (the listener's TcpConfig.timestamps), if the SYN asks."""
    record = record_of(time_wait(TS_CONFIG, TS_OPTIONS))
    s = seg(RCV_NXT + seq_off, None, SYN, options=peer_ts(TS_OPTIONS, tsval))
    assert record.new_incarnation_rule(s, timestamps=timestamps) is rule
    if rule is None:  # refused: dropped silently
        assert record.on_segment(s, 5.0, TWO_MSL, None, timestamps=timestamps) is None


def test_without_timestamps_in_the_old_connection_a_syn_with_them_may_take_over() -> None:
    """RFC 6191 2, an old incarnation without timestamps: a SYN with TSopt takes the
    four-tuple over whatever its sequence number (the new incarnation drops the old one's
    segments, which carry none: RFC 7323 3.2), if we would use them; one without takes it
    only beyond RCV.NXT. Any other SYN gets RFC 9293 3.10.7.4's challenge ACK (RFC 5961
    4), not RFC 6191's silent drop: RFC 9293 refers SYNs to RFC 6191 only when timestamps
    are in use."""
    record = record_of(time_wait(CFG, TcpOptions(mss=MSS)))
    with_ts = seg(RCV_NXT - 1000, None, SYN, options=TcpOptions(timestamps=(5, 0)))
    assert record.new_incarnation_rule(with_ts) is Rule.NEW_INCARNATION_TIMESTAMP
    assert record.new_incarnation_rule(with_ts, timestamps=False) is None
    assert record.new_incarnation_rule(seg(RCV_NXT + 1, None, SYN)) is Rule.NEW_INCARNATION
    old = seg(RCV_NXT, None, SYN)
    assert record.new_incarnation_rule(old) is None
    [ack] = answer(record, old, 1.0, CFG)
    assert (ack.seq, ack.ack, ack.flags, ack.options) == (ISS + 2, RCV_NXT, ACK, TcpOptions())


def test_a_syn_ack_with_an_older_tsval_gets_paws_ack() -> None:
    """Not a connection request (RFC 6191 is about bare SYNs): PAWS answers it (RFC 7323
    5.3 R1), the record and the Connection alike: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
    with TSval from our clock (offset 0: 5000 ms at 5 s) and TSecr = TS.Recent."""
    conn = time_wait(TS_CONFIG, TS_OPTIONS)
    record = record_of(conn)
    s = seg(RCV_NXT, ISS + 2, SYN, options=TcpOptions(timestamps=(RECENT - 1, 0)))
    expected = TcpSegment(LOCAL.port, REMOTE.port, ISS + 2, RCV_NXT, TcpFlags.ACK,
                          conn.tcb.rcv_wnd, TcpOptions(timestamps=(5000, RECENT)))
    conn.on_segment(s, 5.0)
    assert conn.take_outgoing() == [expected] == answer(record, s, 5.0, TS_CONFIG)
