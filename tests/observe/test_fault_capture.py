"""Losses that can be seen (issue 13, item 8): what the fault link drops, duplicates or
corrupts is in the trace and in the capture (pcapng comments), and `userstack ladder`
draws a dropped segment stopping midway and counts it as lost, not presumed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from userstack.observe.ladder import render_ladder
from userstack.observe.replay import classify, find_connections, read_capture
from userstack.wire.pcapng import Fault, fault_in, open_capture

from .fault_capture import record_lossy_connection

SVG = "{http://www.w3.org/2000/svg}"


def comments(path: Path) -> list[Fault | None]:
    with path.open("rb") as f:
        return [fault_in(comment) for _, _, comment in open_capture(f).records()]


def test_every_drop_is_in_the_capture_and_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "lossy.pcapng"
    recorded = record_lossy_connection(path, loss=0.15, seed=1)
    assert recorded.echoed_sha256 == recorded.sent_sha256
    faults = comments(path)
    assert recorded.faults.dropped >= 2
    assert faults.count(Fault.DROPPED) == recorded.faults.dropped
    assert len(faults) == recorded.faults.offered  # every packet once, as it entered
    drop_lines = [line for line in recorded.trace if "fault link: dropped" in line]
    assert len(drop_lines) == recorded.faults.dropped
    assert all(" IP 10.0.0." in line for line in drop_lines)  # the packet, tcpdump-style


def test_the_ladder_draws_the_drops_as_lost_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "lossy.pcapng"
    recorded = record_lossy_connection(path, loss=0.15, seed=1)
    ladder = render_ladder(path, tmp_path / "lossy.svg")
    dropped = {i for i, p in enumerate(ladder.conversation.segments) if p.fault is Fault.DROPPED}
    assert len(dropped) == recorded.faults.dropped
    # observed, not presumed: exactly the recorded drops, though a FIN resent after its
    # lost ACK would otherwise be presumed lost too
    assert ladder.delivery.lost == ladder.delivery.recorded_lost == dropped
    root = ET.fromstring(ladder.svg)
    lost = [g for g in root.iter(f"{SVG}g") if "lost" in g.get("class", "").split()]
    assert {int(g.get("data-index", "-1")) for g in lost} == dropped
    for g in lost:  # the arrow stops midway: no arrowhead
        [line] = g.iter(f"{SVG}line")
        assert line.get("marker-end") is None
    assert f"{len(dropped)} lost (recorded by the fault link)" in ladder.svg
    assert ladder.replay.notes == []  # the replay followed: the drops were not delivered


def test_duplicates_and_corruptions_are_recorded_and_not_taken_for_retransmissions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.pcapng"
    recorded = record_lossy_connection(path, loss=0.0, duplicate=0.3, corrupt=0.1, seed=2)
    assert recorded.echoed_sha256 == recorded.sent_sha256
    faults = comments(path)
    assert faults.count(Fault.DUPLICATED) == recorded.faults.duplicated > 0
    assert faults.count(Fault.CORRUPTED) == recorded.faults.corrupted > 0
    capture = read_capture(path)
    [conv] = find_connections(capture.segments)
    delivery = classify(conv)
    duplicates = {i for i, p in enumerate(conv.segments) if p.fault is Fault.DUPLICATED}
    assert delivery.duplicates == duplicates
    assert not duplicates & delivery.retransmitted
    corrupted = {i for i, p in enumerate(conv.segments) if p.fault is Fault.CORRUPTED}
    assert corrupted <= delivery.lost  # a receiver's checksum dropped them
