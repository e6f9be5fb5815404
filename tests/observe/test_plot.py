"""`userstack plot` and the path simulation behind the cwnd plots."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from userstack.cli import main
from userstack.observe.pathsim import SimPath, simulate
from userstack.observe.plot import (
    chart_svg,
    cwnd_chart,
    nice_ticks,
    render_time_sequence,
    sequence_trace,
    time_sequence_chart,
)
from userstack.observe.replay import Side, find_connections, read_capture

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_ticks() -> None:
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0, 4.12) == [0, 1, 2, 3, 4]
    assert nice_ticks(0, 340_000) == [0, 100_000, 200_000, 300_000]
    assert nice_ticks(5, 5) == [5]


def test_a_clean_path_runs_at_the_bottleneck_rate() -> None:
    path = SimPath(bits_per_second=10e6, queue=1000, delay=0.01)  # more than any window
    result = simulate(1_000_000, path, record=False)
    assert result.intact
    assert (result.queue_drops, result.random_losses) == (0, 0)
    wire = 1_000_000 * 8 / 10e6  # 0.8 s of payload alone
    assert wire < result.elapsed < 2 * wire
    cwnds = [s.cwnd for s in result.samples]
    assert cwnds[0] < cwnds[-1]  # slow start, and nothing ever cut it


def test_a_full_queue_is_a_loss_the_sender_reacts_to() -> None:
    result = simulate(2_000_000, SimPath(bits_per_second=10e6, queue=20, delay=0.01),
                      record=False)
    assert result.intact and result.queue_drops > 0
    cut = next(i for i, s in enumerate(result.samples) if s.ssthresh < 1 << 29)
    ssthresh = result.samples[cut].ssthresh
    # PRR (RFC 6937) brings cwnd down to the new ssthresh over the recovery, and the
    # recovery ends with cwnd = ssthresh
    assert any(s.cwnd == s.ssthresh == ssthresh for s in result.samples[cut:])


@pytest.fixture(scope="module")
def lossy_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = simulate(600_000, SimPath(loss=0.01, seed=3))
    assert result.intact and result.random_losses > 0
    path = tmp_path_factory.mktemp("plot") / "lossy.pcap"
    result.write_pcap(str(path))
    return path


def test_the_time_sequence_trace_of_a_lossy_transfer(lossy_capture: Path) -> None:
    [conv] = find_connections(read_capture(lossy_capture).segments)
    trace = sequence_trace(conv)
    assert trace.sender is Side.CLIENT  # the side that sent the data
    assert trace.payload == 600_000
    assert trace.retransmitted  # losses were repaired ...
    assert trace.sacks  # ... with SACK blocks reporting the holes
    acks = [a for _, a in trace.acks]
    assert acks == sorted(acks) and acks[-1] == 600_001  # cumulative, up to the last byte
    assert all(w >= a for (_, a), (_, w) in zip(trace.acks, trace.window, strict=True))
    # the other direction carried no data
    assert sequence_trace(conv, Side.SERVER).payload == 0


def test_plot_command_writes_the_svg(lossy_capture: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tsg.svg"
    assert main(["plot", str(lossy_capture), "-o", str(out)]) == 0
    assert "600000 bytes from the client" in capsys.readouterr().out
    root = ET.fromstring(out.read_text())
    classes = {e.get("class") for e in root.iter(f"{SVG}path")}
    assert {"bars data", "bars retransmission", "bars SACK", "line ACK", "line window"} <= classes
    assert main(["plot", str(lossy_capture), "--connection", "3"]) == 1  # no such connection


def test_many_segments_draw_no_more_bars_than_pixels(lossy_capture: Path, tmp_path: Path) -> None:
    trace = render_time_sequence(lossy_capture, tmp_path / "t.svg")
    root = ET.fromstring((tmp_path / "t.svg").read_text())
    [data] = [e for e in root.iter(f"{SVG}path") if e.get("class") == "bars data"]
    assert len(trace.data) > 400
    assert data.get("d", "").count("M") <= 980  # one per pixel column at most


def test_cwnd_chart_leaves_out_the_initial_ssthresh() -> None:
    samples = [(0.0, 4380, 1 << 30), (0.1, 8760, 1 << 30), (0.2, 4380, 4380)]
    root = ET.fromstring(chart_svg(cwnd_chart(samples, "cwnd", "test")))
    paths = {e.get("class"): e.get("d", "") for e in root.iter(f"{SVG}path")}
    assert paths["line cwnd"].count("L") >= 2
    assert paths["line ssthresh"].count("M") == 1 and "L" in paths["line ssthresh"]


def test_a_window_zooms_in(lossy_capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "zoom.svg"
    assert main(["plot", str(lossy_capture), "-o", str(out), "--window", "0.2", "0.4"]) == 0
    root = ET.fromstring(out.read_text())
    assert "shown from 0.2 s to 0.4 s" in "".join(root.itertext())
    [conv] = find_connections(read_capture(lossy_capture).segments)
    trace = sequence_trace(conv)
    chart = time_sequence_chart(trace, "x", (0.2, 0.4))
    [data, _, _] = chart.bars
    assert data.bars and all(0.2 <= t <= 0.4 for t, _, _ in data.bars)
    ack = chart.lines[0].points
    assert ack[0][0] == 0.2  # the ACK line's value at the window's start, carried in
    assert ack[0][1] == max(a for t, a in trace.acks if t < 0.2)
