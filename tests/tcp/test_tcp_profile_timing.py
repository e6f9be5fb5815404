"""The ACK and probe timing that TcpConfig.linux() changes (docs/profiles.md), segment by
segment in virtual time: quick-ACK mode (config.quickack), the ACK of a FIN, and the tail
loss probe's timeout (config.tlp_timing), each against the RFC profile's behaviour."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tcp_harness import (
    ACK,
    FIN,
    IRS,
    ISS,
    MSS,
    PSH,
    established,
    expect,
    expect_nothing,
    out,
    seg,
    send,
)

from userstack.tcp.config import TcpConfig, TlpTiming
from userstack.tcp.connection import Connection
from userstack.tcp.rack import LINUX_PTO_SLACK, PTO_MIN, PTO_NO_RTT, WCDELACKT, probe_timeout
from userstack.tcp.timers import TimerKind
from userstack.wire.tcp import TcpOptions

# 40 ms delayed ACKs as Linux; a 64000-byte window is 32 segments of 1000: the quick-ACK
# count is the configured 16 (Linux: min(16, rcv_wnd / (2 * rcv_mss)))
RFC = TcpConfig(mss=MSS, recv_buffer=64000, delayed_ack=0.04)
QUICK = replace(RFC, quickack=16)
X = b"x" * 10


def data(conn: Connection, offset: int, at: float) -> None:
    """Ten bytes from the peer at stream offset `offset`."""
    send(conn, seg(IRS + 1 + offset, ISS + 1, payload=X), at=at)


def test_rfc_profile_delays_the_first_segment_already() -> None:
    conn = established(RFC)
    data(conn, 0, at=0.0)
    expect_nothing(conn)
    assert conn.next_deadline() == pytest.approx(0.04)


def test_quickack_acks_the_first_sixteen_segments_at_once_then_delays() -> None:
    conn = established(QUICK)
    for i in range(16):
        data(conn, 10 * i, at=0.001 * i)
        expect(conn, [out(ISS + 1, IRS + 1 + 10 * (i + 1))])
    data(conn, 160, at=0.016)  # the 17th: steady state, delayed as RFC 1122 4.2.3.2
    expect_nothing(conn)
    assert conn.info(0.016).timer is TimerKind.DELAYED_ACK
    expect_nothing(conn, at=0.055)
    conn.on_timer(0.056)
    expect(conn, [out(ISS + 1, IRS + 171)])


def test_quickack_count_is_capped_by_half_the_window_in_segments() -> None:
    conn = established(replace(QUICK, recv_buffer=4000))  # 4000 / (2 * 1000) = 2
    data(conn, 0, at=0.0)
    expect(conn, [out(ISS + 1, IRS + 11)])
    data(conn, 10, at=0.001)
    expect(conn, [out(ISS + 1, IRS + 21)])
    data(conn, 20, at=0.002)
    expect_nothing(conn)


def test_quickack_again_after_an_idle_gap_longer_than_the_rto() -> None:
    conn = established(QUICK)
    for i in range(17):
        data(conn, 10 * i, at=0.0)
    conn.on_timer(0.04)
    conn.take_outgoing()
    rto = conn.info(0.04).rto  # 1 s: the handshake's sample of 0 s, RTO minimum 1 s
    data(conn, 170, at=rto)  # a gap of exactly the RTO since the last data: not idle
    expect_nothing(conn)
    conn.on_timer(rto + 0.04)
    conn.take_outgoing()
    later = rto + rto + 0.001  # longer than the RTO since the last data
    data(conn, 180, at=later)
    expect(conn, [out(ISS + 1, IRS + 191)])
    data(conn, 190, at=later + 0.001)  # still in quick-ACK mode: 15 left
    expect(conn, [out(ISS + 1, IRS + 201)])


def test_fin_before_any_data_is_acked_at_once_with_quickack() -> None:
    """Linux's delayed-ACK timeout is 0 until the first data (packetdrill's
    close-remote-fin-then-close: `< F. 1:1(0)` then at once `> . 1:1(0) ack 2`)."""
    conn = established(QUICK)
    send(conn, seg(IRS + 1, ISS + 1, FIN | ACK), at=0.5)
    expect(conn, [out(ISS + 1, IRS + 2)])


def test_fin_after_data_is_delayed_in_both_profiles() -> None:
    """Linux's tcp_fin() leaves quick-ACK mode: the FIN's ACK waits, so that the
    application's own FIN can carry it."""
    for config in (RFC, QUICK):
        conn = established(config)
        data(conn, 0, at=0.0)
        assert conn.receive(100, 0.01) == X
        conn.on_timer(0.04)
        conn.take_outgoing()
        send(conn, seg(IRS + 11, ISS + 1, FIN | ACK), at=0.1)
        expect_nothing(conn)
        conn.close(0.12)  # the application closes: its FIN carries the ACK
        expect(conn, [out(ISS + 1, IRS + 12, FIN | ACK)])


def test_fin_before_data_is_delayed_without_quickack() -> None:
    conn = established(RFC)
    send(conn, seg(IRS + 1, ISS + 1, FIN | ACK), at=0.5)
    expect_nothing(conn)
    conn.on_timer(0.54)
    expect(conn, [out(ISS + 1, IRS + 2)])


# ---- the tail loss probe's timeout ------------------------------------------------------

SACK_OK = TcpOptions(mss=MSS, sack_permitted=True)
BIG = 60000
D = b"d" * 1000
NODELAY = TcpConfig(mss=MSS, recv_buffer=8000, send_buffer=64000, delayed_ack=0.0, nagle=False)


def probing(config: TcpConfig, rtt: float) -> Connection:
    """SACK agreed, SRTT = `rtt` from the handshake, two segments sent at time 0."""
    conn = established(config, peer_window=BIG, peer_options=SACK_OK, rtt=rtt)
    conn.send(b"d" * 2000, 0.0)
    expect(conn, [out(ISS + 1, IRS + 1, payload=D), out(ISS + 1001, IRS + 1, PSH | ACK, payload=D)])
    return conn


def test_rfc_probe_timeout_is_two_round_trips() -> None:
    conn = probing(NODELAY, rtt=0.1)
    assert conn.next_deadline() == pytest.approx(2 * 0.1)
    conn.on_timer(0.2)
    expect(conn, [out(ISS + 1001, IRS + 1, PSH | ACK, payload=D)])


def test_rfc_probe_timeout_has_a_floor_when_srtt_is_zero() -> None:
    """RFC 8985 7.2's 2*SRTT is 0 on a path measured at 0 s: without the floor the
    probe would go out at once, beside the data it probes for."""
    conn = probing(NODELAY, rtt=0.0)
    assert conn.next_deadline() == pytest.approx(PTO_MIN)
    expect_nothing(conn, at=PTO_MIN / 2)
    conn.on_timer(PTO_MIN)
    expect(conn, [out(ISS + 1001, IRS + 1, PSH | ACK, payload=D)])


def test_linux_probe_timeout_adds_two_milliseconds() -> None:
    conn = probing(replace(NODELAY, tlp_timing=TlpTiming.LINUX), rtt=0.1)
    assert conn.next_deadline() == pytest.approx(2 * 0.1 + 0.002)
    expect_nothing(conn, at=0.2)  # where the RFC profile probes
    conn.on_timer(0.202)
    expect(conn, [out(ISS + 1001, IRS + 1, PSH | ACK, payload=D)])


def test_linux_probe_timeout_with_zero_srtt_is_two_milliseconds() -> None:
    conn = probing(replace(NODELAY, tlp_timing=TlpTiming.LINUX), rtt=0.0)
    assert conn.next_deadline() == pytest.approx(0.002)


def test_linux_probe_with_one_segment_out_waits_rto_min_and_is_capped_by_the_rto() -> None:
    config = replace(NODELAY, tlp_timing=TlpTiming.LINUX, rto_min=0.2, rto_initial=1.0)
    conn = established(config, peer_window=BIG, peer_options=SACK_OK, rtt=0.01)
    conn.send(D, 0.0)
    expect(conn, [out(ISS + 1, IRS + 1, PSH | ACK, payload=D)])
    rto = conn.info(0.0).rto  # max(0.01 + 4 * 0.005, rto_min) = 0.2
    assert rto == pytest.approx(0.2)
    # PTO = 2 * 0.01 + rto_min = 0.22 is later than the RTO's expiry: the probe goes then
    assert conn.next_deadline() == pytest.approx(rto)


@pytest.mark.parametrize(
    ("srtt", "segments", "timing", "pto"),
    [
        (None, 3, TlpTiming.RFC8985, PTO_NO_RTT),
        (None, 1, TlpTiming.LINUX, PTO_NO_RTT),
        (0.05, 3, TlpTiming.RFC8985, 0.1),
        (0.05, 1, TlpTiming.RFC8985, 0.1 + WCDELACKT),
        (0.001, 3, TlpTiming.RFC8985, PTO_MIN),
        (0.05, 3, TlpTiming.LINUX, 0.1 + LINUX_PTO_SLACK),
        (0.05, 1, TlpTiming.LINUX, 0.1 + 0.2),
    ],
)
def test_probe_timeout_formulas(
    srtt: float | None, segments: int, timing: TlpTiming, pto: float
) -> None:
    assert probe_timeout(srtt, segments, timing, 0.2) == pytest.approx(pto)


def test_profile_knobs_are_checked() -> None:
    with pytest.raises(ValueError, match="quickack"):
        TcpConfig(quickack=-1)
    with pytest.raises(ValueError, match="tlp_timing must be one of rfc8985, linux"):
        TcpConfig(tlp_timing="bsd")  # type: ignore[arg-type]
    assert TcpConfig(tlp_timing="linux").tlp_timing is TlpTiming.LINUX  # type: ignore[arg-type]
