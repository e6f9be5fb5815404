"""Header prediction (tcp/fast_path.py) changes the speed and nothing else.

Each test records real transfers (every input each Connection got, tests/call_log.py),
then replays each connection's inputs through a connection with the fast path and one
without (TcpConfig(header_prediction=False)), and one explaining itself (which never
takes the fast path): after every input, the segments sent, the events, the deadline,
what the call returned and the whole state (TCB, Sender with its scoreboard, RACK,
recovery and congestion controller, Receiver with its buffer, timers) must be the same.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tcp_sim
from call_log import Recording, fast_path_agrees, recording

from userstack.observe.replay import classify, find_connections, read_capture
from userstack.observe.replay import replay as replay_capture
from userstack.tcp.config import Congestion, TcpConfig

DEMO_CAPTURE = Path(__file__).resolve().parents[2] / "docs" / "images" / "viewer-demo.pcap"
SIM = TcpConfig(msl=1.0, recv_buffer=64 * 1024, send_buffer=64 * 1024)


def transfer(seed: int, faults: tcp_sim.Faults, a_bytes: int, b_bytes: int,
             **kwargs: object) -> list[Recording]:
    with recording() as recordings:
        result = tcp_sim.run(seed, faults, a_bytes, b_bytes, **kwargs)  # type: ignore[arg-type]
    assert len(result.b.received) == a_bytes and len(result.a.received) == b_bytes
    assert len(recordings) == 2
    return recordings


LOSSY = tcp_sim.Faults(loss=0.03, duplicate=0.01, jitter=0.004)
SCENARIOS = {
    "lossless one way": (1, tcp_sim.Faults(), 600_000, 0, {}),
    "lossless both ways": (2, tcp_sim.Faults(), 300_000, 300_000, {}),
    "lossy, SACK, slow reader": (3, LOSSY, 150_000, 100_000, {"slow_reader": True}),
    "lossy, SACK": (4, LOSSY, 400_000, 20_000, {}),
    "lossy, NewReno without SACK": (5, LOSSY, 400_000, 20_000,
                                    {"config": dataclasses.replace(SIM, sack=False)}),
    "lossy, CUBIC, keep-alives": (6, LOSSY, 400_000, 20_000, {"config": dataclasses.replace(
        SIM, congestion=Congestion.CUBIC, keepalive=True, keepalive_idle=0.5)}),
    "lossy, super-segments": (7, LOSSY, 600_000, 0, {
        "max_packet": 65535, "config": dataclasses.replace(SIM, recv_buffer=256 * 1024)}),
    "lossless, no delayed ACK, no window scale": (8, tcp_sim.Faults(), 300_000, 0, {
        "config": dataclasses.replace(SIM, delayed_ack=0, window_scale=False)}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fast_path_gives_the_general_paths_result(scenario: str) -> None:
    seed, faults, a_bytes, b_bytes, kwargs = SCENARIOS[scenario]
    taken = [fast_path_agrees(rec)
             for rec in transfer(seed, faults, a_bytes, b_bytes, **kwargs)]
    assert sum(acks + data for acks, data in taken) > 0  # the fast path was exercised


def test_fast_path_on_the_demo_capture() -> None:
    """The captured demo run (a kernel client and userstack, docs/walkthrough.md) replayed
    through the core, each endpoint's inputs then compared as above."""
    capture = read_capture(DEMO_CAPTURE)
    with recording() as recordings:
        for conv in find_connections(capture.segments):
            replay_capture(conv, classify(conv))
    assert len(recordings) >= 2
    taken = [fast_path_agrees(rec) for rec in recordings]
    assert sum(acks + data for acks, data in taken) > 0


def test_fast_path_takes_most_segments_of_a_bulk_transfer() -> None:
    """Not a stub: at the receiver of a lossless 2 MB transfer nearly every data segment,
    and at its sender nearly every pure ACK, go the short way."""
    with recording() as recordings:
        result = tcp_sim.run(9, tcp_sim.Faults(), 2_000_000, 0)
    sent, received = recordings
    sender, receiver = result.a.conn, result.b.conn
    data = received.count("on_segment", lambda seg, now: bool(seg.payload))
    acks = sent.count("on_segment", lambda seg, now: not seg.payload)
    print(f"fast path: {receiver.fast_data} of {data} data segments, "
          f"{sender.fast_acks} of {acks} ACKs")
    assert receiver.fast_data >= 0.95 * data
    assert sender.fast_acks >= 0.9 * acks
    assert sender.fast_data == receiver.fast_acks == 0  # one way: none of those
