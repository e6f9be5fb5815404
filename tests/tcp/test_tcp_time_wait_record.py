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
