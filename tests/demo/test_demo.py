"""`userstack demo`, run as a user would: its output, its pcap and its ladder diagrams.

The demo makes its own network namespace, so no fixture; like the `netns` fixture, these
tests skip where that is impossible, except on CI (CI=true), where they fail instead.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns import skip_or_fail, unavailable_reason

from userstack.observe.why import explain_capture
from userstack.tcp.state import State
from userstack.wire import PcapReader, TcpFlags, TcpSegment, parse_tcp_packet

pytestmark = pytest.mark.netns

STACK = "10.0.0.2"


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    out: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    out = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "userstack.cli", "demo", "--out", str(out)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    yield DemoRun(result.returncode, result.stdout, result.stderr, out)


def test_exits_0_and_shows_every_state(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    transitions = [line for line in demo.stdout.splitlines() if " -> " in line]
    shown = {name for line in transitions for name in line.split()[-3::2]}
    assert shown == {state.value for state in State}, shown


def test_shows_time_wait_with_its_timer_then_without(demo: DemoRun) -> None:
    tables = demo.stdout.split("$ userstack ss -tano")[1:]
    with_time_wait = [t for t in tables if "TIME-WAIT" in t.split("\n\n")[0]]
    assert with_time_wait, demo.stdout
    assert "timer:(timewait," in with_time_wait[0]
    assert "TIME-WAIT" not in tables[-1].split("\n\n")[0]


def _closes(pcap: Path) -> dict[int, list[tuple[str, TcpSegment]]]:
    """Per kernel-side port: from the first FIN on, (sender, segment); of a run of
    segments without FIN from one side, only the last is kept. A FIN sent again (the
    kernel's tail loss probe, when our ACK is late on a busy machine) and the duplicate
    ACK it draws are left out: the close is the same close."""
    conns: dict[int, list[tuple[str, TcpSegment]]] = {}
    with pcap.open("rb") as f:
        for _, packet in PcapReader(f):
            ip, seg = parse_tcp_packet(packet)
            sender = "stack" if str(ip.src) == STACK else "kernel"
            kernel_port = seg.dst_port if sender == "stack" else seg.src_port
            conns.setdefault(kernel_port, []).append((sender, seg))
    tails = {}
    for port, segs in conns.items():
        first = next(i for i, (_, s) in enumerate(segs) if s.flags & TcpFlags.FIN)
        tail: list[tuple[str, TcpSegment]] = []
        fins: set[tuple[str, int]] = set()
        acked: dict[str, int] = {}
        for who, seg in segs[first:]:
            fin = bool(seg.flags & TcpFlags.FIN)
            if fin and (who, int(seg.seq)) in fins:
                continue  # the same FIN again
            if not fin and acked.get(who) == int(seg.ack):
                continue  # a duplicate ACK: the answer to a FIN sent again
            if fin:
                fins.add((who, int(seg.seq)))
            acked[who] = int(seg.ack)
            if not fin and tail and tail[-1][0] == who and not tail[-1][1].flags & TcpFlags.FIN:
                tail[-1] = (who, seg)  # a run of one side's ACKs: the last one counts
            else:
                tail.append((who, seg))
        tails[port] = tail
    return tails


def _fin_end(seg: TcpSegment) -> int:
    return (int(seg.seq) + len(seg.payload) + 1) & 0xFFFFFFFF


def test_pcap_shows_a_four_way_and_a_three_way_close(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    tails = _closes(demo.out / "demo.pcap")

    # Act 2 (kernel port 7000): FIN(stack), ACK(kernel), FIN(kernel), ACK(stack).
    four = tails[7000]
    assert [(who, bool(s.flags & TcpFlags.FIN)) for who, s in four] == [
        ("stack", True), ("kernel", False), ("kernel", True), ("stack", False)]
    assert int(four[1][1].ack) == _fin_end(four[0][1])  # the kernel ACKs our FIN alone
    assert int(four[3][1].ack) == _fin_end(four[2][1])

    # Act 3 (kernel port 7001): FIN(kernel), FIN+ACK(stack) acking it, ACK(kernel).
    three = tails[7001]
    assert [(who, bool(s.flags & TcpFlags.FIN)) for who, s in three] == [
        ("kernel", True), ("stack", True), ("kernel", False)]
    assert three[1][1].flags & TcpFlags.ACK and int(three[1][1].ack) == _fin_end(three[0][1])
    assert int(three[2][1].ack) == _fin_end(three[1][1])

    # Act 4 (kernel port 7002): the FINs cross, neither acknowledges the other's.
    crossed = tails[7002]
    assert [bool(s.flags & TcpFlags.FIN) for _, s in crossed[:2]] == [True, True]
    assert {who for who, _ in crossed[:2]} == {"stack", "kernel"}


def test_writes_a_ladder_per_connection_that_parses(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    svgs = sorted(demo.out.glob("connection-*.svg"))
    assert len(svgs) == 4  # curl, four-way, three-way, simultaneous
    for svg in svgs:
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert str(svg) in demo.stdout
    texts = "".join(ET.parse(svgs[3]).getroot().itertext())
    assert "CLOSING" in texts


def test_every_segment_of_the_demo_is_explained_and_the_page_written(demo: DemoRun) -> None:
    """Issue 17: on the demo's pcap, each segment gets at least one decision of a core."""
    assert demo.returncode == 0, demo.stdout + demo.stderr
    explanations = explain_capture(demo.out / "demo.pcap")
    assert len(explanations) == 4
    assert {e.conversation.client.port: e.undecided() for e in explanations} == {
        e.conversation.client.port: [] for e in explanations
    }
    page = demo.out / "demo.html"
    assert f"why each segment did what it did: {page}" in demo.stdout
    assert page.read_text().count('class="segment ') == sum(
        len(e.conversation.segments) for e in explanations
    )
