"""scripts/bench_memory and scripts/bench_core, tiny, run as a user would: they must not rot.

These check that the scripts run and print every figure they promise, never the
figures' values: memory and speed are the scripts' to print, not a test's to judge. Both
are sans-I/O (two stacks or two connections joined by hand): no namespace is needed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BYTES_EACH = r"([\d,]+) bytes each"


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, ROOT / "scripts" / script, *args],
                            capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_memory_prints_every_figure_and_where_the_bytes_are() -> None:
    out = run("bench_memory", "--pairs", "40", "--time-waits", "60")
    for label in (r"idle ESTABLISHED connection end \(40 pairs\)",
                  r"idle ESTABLISHED connection end after a \d+-byte request and a "
                  r"[\d,]+-byte response \(40 pairs\)",
                  r"TIME-WAIT entry \(60\)"):
        assert re.search(f"{label}: {BYTES_EACH}", out), (label, out)
    assert "userstack/tcp/connection.py" in out  # the breakdown, by allocating line
    assert re.search(r"idle ESTABLISHED connection pair: [\d,]+ bytes", out), out


def test_bench_core_prints_both_sides_with_the_fast_path_count() -> None:
    # 2 MB: a shorter transfer is all queued before the sender closes, so its ACKs come
    # in FIN-WAIT-1, which header prediction (ESTABLISHED, as BSD's) does not take
    out = run("bench_core", "--size", "2", "--repeat", "1")
    for side in ("receiver (data in)", "sender (ACKs in)"):
        row = next(line for line in out.splitlines() if line.startswith(side))
        segments, fast, *_ = row[len(side):].split()
        assert int(segments) > 0 and 0 < int(fast) <= int(segments), row
