"""ECN on the simulated path (RFC 3168): a bottleneck that marks CE above a queue threshold
instead of letting the queue overflow. With ECN agreed, the sender backs off on the marks
alone: the transfer arrives intact with no drop and no retransmission at all, the marks
counted by the path and the reductions by the sender, once per window of data."""

from __future__ import annotations

import pytest

from userstack.observe.pathsim import SimPath, simulate
from userstack.tcp.config import Congestion, EcnMode, TcpConfig

SIZE = 4_000_000
PATH = SimPath(bits_per_second=20e6, queue=100, delay=0.005, mark_above=10)


def config(congestion: Congestion, ecn: EcnMode) -> TcpConfig:
    return TcpConfig(recv_buffer=1 << 20, send_buffer=1 << 20, congestion=congestion, ecn=ecn)


@pytest.mark.parametrize("congestion", list(Congestion))
def test_marks_instead_of_drops(congestion: Congestion) -> None:
    result = simulate(SIZE, PATH, config(congestion, EcnMode.ON), record=False)
    print(f"{congestion}: {result.elapsed:.2f} s, marked {result.marked}, "
          f"ECN reductions {result.ecn_reductions}, drops {result.queue_drops}, "
          f"retransmissions {result.retransmissions}")
    assert result.intact  # sha256 of every byte, in order
    assert result.queue_drops == 0 and result.random_losses == 0
    assert result.retransmissions == 0 and result.timeouts == 0
    assert result.marked > result.ecn_reductions > 0  # several marks per reduction
    wire = SIZE * 8 / PATH.bits_per_second
    assert result.elapsed < 1.5 * wire  # the marks keep the queue short, not the link idle


def test_without_ecn_the_same_path_drops_and_retransmits() -> None:
    """The control: the peer did not agree (OFF), so nothing is ECT, nothing is marked,
    and the queue is found the old way, by overflowing."""
    result = simulate(SIZE, PATH, config(Congestion.NEWRENO, EcnMode.OFF), record=False)
    assert result.intact and result.marked == 0 and result.ecn_reductions == 0
    assert result.queue_drops > 0 and result.retransmissions > 0
