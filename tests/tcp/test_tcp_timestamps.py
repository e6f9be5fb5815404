"""RFC 7323 timestamps: the object alone (the clock, which timestamp to echo (4.3), RTTM
(4.1), PAWS's R1 and R3 (5.3) and the 24-day rule (5.5)), then wired into a Connection:
the SYNs' negotiation (3.2), PAWS across a real sequence wrap, TS.Recent's update rule,
RTT samples from TSecr, timestamps on a RST."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tcp_harness import CFG, IRS, ISS, LOCAL, MSS, NOFLAGS, REMOTE, SYN, seg, send

from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.state import State
from userstack.tcp.timestamps import PAWS_IDLE, Timestamps, ts_before
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment

RCV = SeqNum(1000)


def test_modular_comparison() -> None:
    assert ts_before(1, 2) and not ts_before(2, 1) and not ts_before(5, 5)
    assert ts_before(0xFFFF_FFF0, 0x10)  # across the wrap, as sequence numbers compare
    assert not ts_before(0x10, 0xFFFF_FFF0)


def test_clock_ticks_per_millisecond_from_the_offset() -> None:
    ts = Timestamps(offset=0xFFFF_FFFF, ts_recent=7, now=0.0)
    assert ts.clock(0.0) == 0xFFFF_FFFF
    assert ts.clock(0.0015) == 0  # one tick later, wrapped
    assert ts.clock(2.0) == 1999


def test_echo_ts_recent_only_with_ack() -> None:
    ts = Timestamps(offset=100, ts_recent=555, now=0.0)
    assert ts.option(0.010, None) == (110, 0)  # no ACK bit: TSecr SHOULD be 0 (3.2)
    assert ts.last_ack_sent is None
    assert ts.option(0.020, RCV) == (120, 555)  # MUST echo TS.Recent (4.3 (3))
    assert ts.last_ack_sent == RCV


def test_paws_rejects_an_older_timestamp_but_not_a_rst() -> None:
    ts = Timestamps(offset=0, ts_recent=5000, now=0.0)
    assert ts.paws_rejects(4999, rst=False, now=1.0)  # R1
    assert not ts.paws_rejects(5000, rst=False, now=1.0)  # equal is not older
    assert not ts.paws_rejects(4999, rst=True, now=1.0)  # RSTs are not checked
    # across the timestamp clock's own wrap: 0x10 is newer than 0xFFFFFFF0
    wrapped = Timestamps(offset=0, ts_recent=0xFFFF_FFF0, now=0.0)
    assert not wrapped.paws_rejects(0x10, rst=False, now=1.0)
    assert wrapped.paws_rejects(0xFFFF_FF00, rst=False, now=1.0)


def test_ts_recent_advances_only_for_segments_at_the_left_edge() -> None:
    ts = Timestamps(offset=0, ts_recent=10, now=0.0)
    ts.option(0.0, RCV)  # we acknowledged up to RCV
    assert not ts.update_recent(20, RCV + 1460, now=1.0)  # beyond Last.ACK.sent: kept
    assert ts.ts_recent == 10
    assert ts.update_recent(20, RCV, now=1.0)  # R3: SEG.SEQ <= Last.ACK.sent
    assert (ts.ts_recent, ts.ts_recent_age) == (20, 1.0)
    assert not ts.update_recent(15, RCV, now=2.0)  # never backwards
    assert ts.update_recent(20, RCV - 100, now=3.0)  # an equal TSval at or below: recorded


def test_the_24_day_rule() -> None:
    ts = Timestamps(offset=0, ts_recent=0x7000_0000, now=0.0)
    later = PAWS_IDLE + 1.0
    assert ts.paws_rejects(5, rst=False, now=1.0)
    assert not ts.recent_valid(later)
    assert not ts.paws_rejects(5, rst=False, now=later)  # TS.Recent too old to trust
    ts.option(later, RCV)
    assert ts.update_recent(5, RCV, now=later)  # and replaced by the next valid segment
    assert ts.ts_recent == 5 and ts.recent_valid(later)


def test_rtt_samples_from_the_echo() -> None:
    ts = Timestamps(offset=123_456, ts_recent=0, now=0.0)
    sent = ts.clock(10.0)
    assert ts.rtt_sample(sent, now=10.25, longest=60.0) == pytest.approx(0.25)
    assert ts.rtt_sample(ts.clock(11.0), now=10.5, longest=60.0) is None  # from the future
    # an echo of a TSval older than RTO.max is garbage, not a round trip; so is 0 here,
    # the TSecr of a peer that echoes nothing (133.7 s ago on this clock)
    assert ts.rtt_sample(sent, now=70.5, longest=60.0) is None
    assert ts.rtt_sample(sent, now=69.5, longest=60.0) == pytest.approx(59.5)
    assert ts.rtt_sample(0, now=10.25, longest=60.0) is None


# ---- wired into the connection ---------------------------------------------------------

TS_CFG = replace(CFG, timestamps=True)  # the harness leaves timestamps out; these use them
OFFSET = 0xFFFF_F000  # our clock's offset (RFC 7323 7.1): it wraps 4 s after time 0
PEER_TS = 7_000  # the peer's TSval in its SYN


def clock(offset: int, now: float) -> int:
    return (offset + int(now * 1000)) % 2**32


def tsopt(conn_seg: TcpSegment) -> tuple[int, int] | None:
    return conn_seg.options.timestamps


def established_ts(
    config: TcpConfig = TS_CFG, irs: SeqNum = IRS, scale: int | None = None, sack: bool = False
) -> Connection:
    """An active open with timestamps agreed (both SYNs carried them), at time 0.1; the
    SYN went out at 0. `scale`, `sack`: what else the peer's SYN,ACK offers."""
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=config,
                                  ts_offset=OFFSET)
    [syn] = conn.take_outgoing()
    assert tsopt(syn) == (OFFSET, 0)  # TSval from the offset, TSecr 0 without ACK (3.2)
    options = TcpOptions(mss=MSS, window_scale=scale, sack_permitted=sack,
                         timestamps=(PEER_TS, OFFSET))
    send(conn, seg(irs, ISS + 1, SYN, options=options), at=0.1)
    conn.take_events()
    return conn


def ts_seg(seq: SeqNum | int, tsval: int, *, payload: bytes = b"", flags: TcpFlags = NOFLAGS,
           ack: SeqNum | int = ISS + 1, tsecr: int = 0) -> TcpSegment:
    return seg(seq, ack, flags, payload=payload, options=TcpOptions(timestamps=(tsval, tsecr)))


def test_both_syns_carry_timestamps_then_every_segment_does() -> None:
    conn = established_ts()
    [ack] = conn.take_outgoing()
    assert tsopt(ack) == ((OFFSET + 100) % 2**32, PEER_TS)  # TSecr = TS.Recent (4.3 (3))
    assert conn.send_mss == MSS - 12  # the option takes 12 bytes of every segment
    assert conn.sender.rtt.srtt == pytest.approx(0.1)  # RTTM from the SYN,ACK's echo
    conn.send(b"x" * 3000, 0.2)
    sent = conn.take_outgoing()
    assert [len(s.payload) for s in sent] == [988, 988, 988]  # cwnd: 3 segments
    assert all(tsopt(s) == ((OFFSET + 200) % 2**32, PEER_TS) for s in sent)


def test_a_syn_ack_without_timestamps_turns_them_off() -> None:
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=TS_CFG)
    conn.take_outgoing()
    send(conn, seg(IRS, ISS + 1, SYN, options=TcpOptions(mss=MSS)), at=0.1)
    [ack] = conn.take_outgoing()
    assert tsopt(ack) is None and conn.send_mss == MSS  # RFC 7323 3.2: both SYNs, or none
    # a TSopt arriving now is ignored (3.2: "MUST be ignored and the packet processed")
    send(conn, ts_seg(IRS + 1, 5, payload=b"hi"), at=0.2)
    assert conn.receive(10, 0.2) == b"hi"
    assert tsopt(conn.take_outgoing()[0]) is None


@pytest.mark.parametrize("offered", [True, False])
def test_passive_open_answers_timestamps_only_if_the_syn_had_them(offered: bool) -> None:
    conn = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=1.0, config=TS_CFG,
                                   ts_offset=OFFSET)
    options = TcpOptions(mss=MSS, timestamps=(PEER_TS, 0) if offered else None)
    send(conn, seg(IRS, None, SYN, options=options), at=1.0)
    [syn_ack] = conn.take_outgoing()
    assert tsopt(syn_ack) == (((OFFSET + 1000) % 2**32, PEER_TS) if offered else None)
    send(conn, seg(IRS + 1, ISS + 1, options=TcpOptions(
        timestamps=(PEER_TS + 5, (OFFSET + 1000) % 2**32)) if offered else NO_OPTIONS), at=1.05)
    assert conn.state is State.ESTABLISHED
    assert conn.send_mss == (MSS - 12 if offered else MSS)


def test_timestamps_off_in_the_config_are_neither_offered_nor_answered() -> None:
    off = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG)
    send(off, seg(IRS, None, SYN, options=TcpOptions(mss=MSS, timestamps=(PEER_TS, 0))))
    [syn_ack] = off.take_outgoing()
    assert tsopt(syn_ack) is None
    active = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG)
    assert tsopt(active.take_outgoing()[0]) is None


def test_paws_rejects_an_old_duplicate_across_a_sequence_wrap() -> None:
    """RFC 7323 5 (and its Figure): 2^32 bytes later the same sequence numbers are in the
    window again; an old duplicate from the first time round is in the window, but its
    TSval is older than TS.Recent, so it is not acceptable (R1): an ACK, and dropped."""
    chunk = 1 << 19
    conn = established_ts(replace(TS_CFG, recv_buffer=2 * chunk), scale=0)
    conn.take_outgoing()
    first = ts_seg(IRS + 1, PEER_TS + 1, payload=b"OLD" * 1000)  # its copy is delayed
    send(conn, first, at=0.1)
    assert conn.receive(chunk, 0.1) == first.payload
    payload, sent, tsval, now = bytes(chunk), len(first.payload), PEER_TS + 1, 0.1
    while sent < 1 << 32:  # the peer sends 4 GiB in all, one 512 KiB segment a ms
        n = min(chunk, (1 << 32) - sent)
        tsval, now = tsval + 1, now + 0.001
        send(conn, ts_seg(IRS + 1 + sent, tsval, payload=payload[:n]), at=now)
        assert len(conn.receive(chunk, now)) == n
        conn.take_outgoing()
        sent += n
    assert conn.tcb.rcv_nxt == IRS + 1  # wrapped: the old segment fits RCV.NXT again
    send(conn, first, at=now)
    [ack] = conn.take_outgoing()  # "send an acknowledgment in reply ... and drop"
    assert ack.ack == IRS + 1 and tsopt(ack) == (clock(OFFSET, now), tsval)
    assert conn.readable == 0 and conn.state is State.ESTABLISHED
    send(conn, ts_seg(IRS + 1, tsval + 1, payload=b"new"), at=now)
    assert conn.receive(10, now) == b"new"  # the same sequence number, a current TSval


def test_ts_recent_is_not_advanced_by_segments_outside_the_window_or_ahead() -> None:
    """RFC 7323 4.3 (2), 5.3 R3: TS.Recent takes SEG.TSval only from an acceptable segment
    that starts at or before Last.ACK.sent; an out-of-window one is answered with the old
    echo (R2 fails first), and so is one ahead of a hole (4.3 case B); the segment that
    fills the hole is recorded (case C)."""
    conn = established_ts()
    conn.take_outgoing()
    send(conn, ts_seg(IRS + 1 + 50_000, PEER_TS + 10, payload=b"far"), at=0.2)  # beyond RCV.WND
    [ack] = conn.take_outgoing()
    assert tsopt(ack) == (clock(OFFSET, 0.2), PEER_TS)
    send(conn, ts_seg(IRS + 1 + 100, PEER_TS + 20, payload=b"b" * 100), at=0.3)  # a hole
    [ack] = conn.take_outgoing()
    assert ack.ack == IRS + 1 and tsopt(ack) == (clock(OFFSET, 0.3), PEER_TS)
    send(conn, ts_seg(IRS + 1, PEER_TS + 30, payload=b"a" * 100), at=0.4)  # fills it
    [ack] = conn.take_outgoing()
    assert ack.ack == IRS + 201 and tsopt(ack) == (clock(OFFSET, 0.4), PEER_TS + 30)
    assert conn.receive(1000, 0.4) == b"a" * 100 + b"b" * 100


def test_a_segment_without_timestamps_is_dropped_once_they_are_agreed() -> None:
    conn = established_ts()
    conn.take_outgoing()
    send(conn, seg(IRS + 1, ISS + 1, payload=b"bare"), at=0.2)
    assert conn.readable == 0 and conn.take_outgoing() == []  # silently (RFC 7323 3.2)
    send(conn, seg(IRS + 1, ISS + 1, TcpFlags.RST), at=0.3)  # a RST needs none
    assert conn.state is State.CLOSED


def test_paws_lets_a_rst_through_and_forgets_ts_recent_after_24_days() -> None:
    conn = established_ts()
    conn.take_outgoing()
    send(conn, ts_seg(IRS + 1, PEER_TS - 1, payload=b"old"), at=0.2)
    assert conn.readable == 0 and len(conn.take_outgoing()) == 1  # R1: an ACK
    later = 0.2 + PAWS_IDLE + 1
    send(conn, ts_seg(IRS + 1, PEER_TS - 1, payload=b"idle"), at=later)  # 5.5
    assert conn.receive(10, later) == b"idle"
    assert tsopt(conn.take_outgoing()[0])[1] == PEER_TS - 1  # and it is TS.Recent now
    send(conn, ts_seg(IRS + 5, 1, flags=TcpFlags.RST), at=later)  # R1 checks no RST
    assert conn.state is State.CLOSED


def test_rtt_samples_come_from_tsecr_one_per_ack_and_from_retransmissions() -> None:
    """RFC 7323 4.1: each ACK advancing SND.UNA is a sample, its RTT the clock minus
    TSecr; a retransmission's ACK echoes the retransmission's TSval, so it is sampled
    too, where Karn's rule (RFC 6298 3) would take none."""
    conn = established_ts(replace(TS_CFG, nagle=False))
    conn.take_outgoing()
    assert conn.sender.rtt.srtt == pytest.approx(0.1)  # the SYN,ACK echoed our SYN's TSval
    conn.send(b"x" * 100, 1.0)
    [data] = conn.take_outgoing()
    echo = tsopt(data)[0]
    send(conn, ts_seg(IRS + 1, PEER_TS + 1, ack=ISS + 101, tsecr=echo), at=1.3)
    rtt = conn.sender.rtt
    assert (rtt.srtt, rtt.rttvar) == (pytest.approx(0.1 * 7 / 8 + 0.3 / 8),
                                       pytest.approx(0.05 * 3 / 4 + 0.2 / 4))
    conn.send(b"y" * 100, 2.0)
    conn.take_outgoing()
    resent_at = 2.0 + rtt.rto
    conn.on_timer(resent_at)  # lost: the RTO resends it
    [again] = conn.take_outgoing()
    assert again.seq == ISS + 101 and tsopt(again)[0] == clock(OFFSET, resent_at)
    srtt = rtt.srtt
    send(conn, ts_seg(IRS + 1, PEER_TS + 2, ack=ISS + 201, tsecr=tsopt(again)[0]),
         at=resent_at + 0.2)
    assert rtt.srtt == pytest.approx(srtt * 7 / 8 + 0.2 / 8)  # sampled from the resend


def test_rst_and_sack_acks_carry_timestamps() -> None:
    """RFC 7323 3.2: a RST may carry TSopt (TSecr 0: no ACK bit); beside it only three
    SACK blocks fit in 40 bytes of options."""
    conn = established_ts(sack=True)
    conn.take_outgoing()
    for k in range(4):  # four holes
        send(conn, ts_seg(IRS + 1 + 200 * k + 100, PEER_TS, payload=b"z" * 100), at=0.2)
    *_, last = conn.take_outgoing()
    assert len(last.options.sack_blocks) == 3 and last.options.build()  # fits
    conn.abort(0.5)
    [rst] = conn.take_outgoing()
    assert rst.flags == TcpFlags.RST and tsopt(rst) == (clock(OFFSET, 0.5), 0)
