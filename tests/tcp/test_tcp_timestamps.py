"""RFC 7323 timestamps, the object alone: the clock, which timestamp to echo (4.3), RTTM
(4.1), PAWS's R1 and R3 (5.3) and the 24-day rule (5.5)."""

from __future__ import annotations

import pytest

from userstack.tcp.timestamps import PAWS_IDLE, Timestamps, ts_before
from userstack.wire.seq import SeqNum

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
    assert ts.rtt_sample(sent, now=10.25) == pytest.approx(0.25)
    assert ts.rtt_sample(ts.clock(11.0), now=10.5) is None  # an echo from the future
