"""The compact TIME-WAIT record (tcp/time_wait.py) answers every segment as a Connection
in TIME-WAIT does (RFC 9293 3.10.7.4, RFC 1337, RFC 5961), in 256 bytes or less."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_harness import ACK, CFG, FIN, IRS, ISS, MSS, RST, SYN, established, seg

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.state import State
from userstack.tcp.time_wait import TimeWait
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

SCALED = TcpConfig(mss=MSS, delayed_ack=0.0, msl=10.0)  # 256 KiB buffer: shift 3
CONFIGS = {"unscaled": (CFG, TcpOptions(mss=MSS)),
           "scaled": (SCALED, TcpOptions(mss=MSS, window_scale=7))}


def time_wait(config: TcpConfig, options: TcpOptions) -> Connection:
    """We closed first: FIN-WAIT-1, our FIN acknowledged, the peer's FIN: TIME-WAIT at 0."""
    conn = established(config, peer_options=options)
    conn.close(0.0)
    conn.on_segment(seg(IRS + 1, ISS + 2), 0.0)
    conn.on_segment(seg(IRS + 1, ISS + 2, FIN), 0.0)
    assert conn.state is State.TIME_WAIT
    conn.take_outgoing()
    conn.take_events()
    return conn


def record_of(conn: Connection) -> TimeWait:
    expiry = conn.next_deadline()
    assert expiry is not None
    return TimeWait.from_tcb(conn.tcb, expiry)


def answer(record: TimeWait, s: TcpSegment, now: float, config: TcpConfig) -> list[TcpSegment]:
    reply = record.on_segment(s, now, 2 * config.msl, config.challenge_ack_limit)
    return [] if reply is None else [reply]


FLAGS = st.sampled_from([ACK, RST, SYN, FIN | ACK, RST | ACK, SYN | ACK, FIN, TcpFlags(0),
                         SYN | FIN, ACK | TcpFlags.PSH])


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=200, deadline=None)
@given(flags=FLAGS, seq_off=st.integers(-70_000, 70_000) | st.integers(-2**31, 2**31 - 1),
       ack_off=st.integers(-8000, 2**31 - 1), payload=st.binary(max_size=3),
       at=st.floats(0.0, 19.0))
def test_the_record_answers_as_the_connection_does(
    name: str, flags: TcpFlags, seq_off: int, ack_off: int, payload: bytes, at: float
) -> None:
    """Any one segment: the same reply (or none) and the same 2*MSL deadline after it.
    (ACKs older than SND.UNA - MAX.SND.WND are left out: see the module's departures.)"""
    config, options = CONFIGS[name]
    conn = time_wait(config, options)
    record = record_of(conn)
    s = seg(IRS + 2 + seq_off, ISS + 2 + ack_off, flags, payload=payload)
    conn.on_segment(s, at)
    assert answer(record, s, at, config) == conn.take_outgoing()
    assert record.expiry == conn.next_deadline()


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
