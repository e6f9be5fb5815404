"""Two connections over a lossy, duplicating, reordering channel in virtual time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tcp_sim import Faults, Result, run

from userstack.tcp.config import TcpConfig
from userstack.tcp.state import State
from userstack.wire.tcp import TcpFlags, TcpSegment


def check(result: Result) -> None:
    a, b = result.a, result.b
    assert a.errors == [] and b.errors == [], (a.errors, b.errors)
    assert a.conn.state is State.CLOSED and b.conn.state is State.CLOSED, (
        a.conn.state, b.conn.state, result.now
    )
    assert bytes(b.received) == a.to_send
    assert bytes(a.received) == b.to_send
    # someone waited out TIME-WAIT (unless a late FIN met a CLOSED end and got a RST)
    assert State.TIME_WAIT in a.states + b.states


def test_clean_channel() -> None:
    result = run(1, Faults(), 200_000, 50_000)
    check(result)
    # b had less to send, so it closed first and waited out TIME-WAIT
    assert State.TIME_WAIT in result.b.states
    assert State.LAST_ACK in result.a.states


@pytest.mark.parametrize("seed", range(6))
def test_lossy_channel_fixed_seeds(seed: int) -> None:
    check(run(seed, Faults(loss=0.1, duplicate=0.05, jitter=0.03), 60_000, 30_000))


def test_slow_readers_and_zero_windows() -> None:
    check(run(7, Faults(loss=0.05, jitter=0.01), 100_000, 100_000, slow_reader=True))


def test_options_mss_only_on_syn_sack_only_on_pure_acks() -> None:
    """MUST-65 (RFC 9293 3.2): the MSS option never appears outside a SYN. SACK blocks
    (RFC 2018) go on pure ACKs only, so they never push a full segment past the MTU."""
    sent: list[TcpSegment] = []
    check(run(3, Faults(loss=0.1, duplicate=0.05, jitter=0.03), 60_000, 30_000, tap=sent.append))
    syns = [s for s in sent if s.flags & TcpFlags.SYN]
    assert len(syns) >= 2 and all(s.options.mss for s in syns)
    assert all(s.options.sack_permitted for s in syns)
    assert all(s.options.mss is None for s in sent if not s.flags & TcpFlags.SYN)
    with_blocks = [s for s in sent if s.options.sack_blocks]
    assert with_blocks, "10% loss must leave holes to report"
    assert all(not s.payload and len(s.options.sack_blocks) <= 4 for s in with_blocks)


SMALL = TcpConfig(mss=536, recv_buffer=3000, send_buffer=5000, msl=1.0, delayed_ack=0.1)
NO_SCALING = TcpConfig(msl=1.0, window_scale=False, nagle=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.2),
    duplicate=st.floats(0.0, 0.1),
    jitter=st.floats(0.0, 0.1),
    a_bytes=st.integers(0, 150_000),
    b_bytes=st.integers(0, 150_000),
    slow=st.booleans(),
    config=st.sampled_from([None, SMALL, NO_SCALING]),
)
def test_random_faults_deliver_identical_bytes(
    seed: int, loss: float, duplicate: float, jitter: float, a_bytes: int, b_bytes: int,
    slow: bool, config: TcpConfig | None,
) -> None:
    result = run(seed, Faults(loss, duplicate, 0.01, jitter), a_bytes, b_bytes,
                 slow_reader=slow, config=config)
    check(result)
    assert result.now < 3000.0
