"""scripts/bench --quick and scripts/lab, run as a user would (both need root)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from netns import skip_or_fail, unavailable_reason

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
METRICS = {"bulk_in_MBps", "bulk_out_MBps", "bulk_in6_MBps", "bulk_out6_MBps",
           "connections_per_s", "rtt_median_us", "rtt_p99_us"}


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def test_bench_quick_prints_json_with_every_measurement() -> None:
    result = subprocess.run([ROOT / "scripts" / "bench", "--quick", "--json"],
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for side in ("userstack", "kernel", "ratio"):
        assert set(report[side]) == METRICS, report
    for side in ("userstack", "kernel"):
        assert all(value > 0 for value in report[side].values()), report
    assert "connections/s" in result.stderr  # the table went to stderr
    assert "IPv6 server -> kernel" in result.stderr
    if report["config"]["offload"]:  # TSO6 both ways: the IPv6 rows moved super-segments
        supers = report["config"]["ipv6_super_segments"]
        assert supers["up"] > 0 and supers["down"] > 0, supers
    for run in ("1q", "2q", "kernel"):  # serve --queues 1 and 2, and the kernel beside
        assert report["queues"][run]["connections_per_s"] > 0, report["queues"]
        assert report["queues"][run]["parallel_bulk_MBps"] > 0, report["queues"]
    assert "bulk, 4 parallel" in result.stderr
    assert set(report["explanations"]["seconds"]) == {"stripped", "off", "on", "printed"}
    assert "explanations off (the default)" in result.stderr


def test_lab_up_run_down() -> None:
    name = f"us-labtest-{os.getpid()}"
    lab = [str(ROOT / "scripts" / "lab")]
    try:
        subprocess.run([*lab, "up", name], check=True, capture_output=True, timeout=30)
        inside = subprocess.run([*lab, "run", name, "--", "ip", "-br", "link"],
                                check=True, capture_output=True, text=True, timeout=30)
        assert [line.split()[:2] for line in inside.stdout.splitlines()] == [["lo", "UNKNOWN"]]
    finally:
        subprocess.run([*lab, "down", name], check=True, capture_output=True, timeout=30)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in listed


def test_bench_transfer_runs_that_one_transfer_alone() -> None:
    """`--transfer`, what the flame graphs in docs/performance.md are recorded over."""
    result = subprocess.run([ROOT / "scripts" / "bench", "--transfer", "bulk_out", "--size", "1"],
                            capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    namespace, line = result.stdout.splitlines()
    assert namespace.startswith("bench: in private network namespaces"), result.stdout
    key, value = line.split()
    assert key == "bulk_out_MBps" and float(value) > 0, result.stdout
