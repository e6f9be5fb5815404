"""The experiment of docs/congestion.md: each controller moves 50 MB intact over the lossy
simulated path (random loss, queue overflows and an outage that forces an RTO)."""

from __future__ import annotations

import pytest

from userstack.observe.compare import PATH, SIZE, run
from userstack.tcp.config import Congestion


@pytest.mark.parametrize("congestion", list(Congestion))
def test_a_lossy_50_mb_transfer_arrives_intact(congestion: Congestion) -> None:
    r = run(congestion)
    result = r.result
    assert result.size == SIZE == 50_000_000
    assert result.intact  # every byte, in order, by sha256
    assert result.queue_drops > 0 and result.random_losses > 0 and result.timeouts >= 1
    wire = SIZE * 8 / PATH.bits_per_second  # 20 s of payload alone
    assert wire < result.elapsed < 1.5 * wire
    assert r.row().startswith(f"| {congestion.value} | yes |")
