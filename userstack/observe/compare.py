"""The experiment of docs/congestion.md: NewReno and CUBIC on the same simulated path.

`scripts/congestion_plots` runs it: a 50 MB transfer with each controller over the same
path (pathsim.py: a 20 Mbit/s bottleneck behind a 50-packet queue, 20 ms each way, a
little random loss, and a 0.3 s outage that forces a retransmission timeout), both
checked by sha256; then it draws cwnd and ssthresh over time for each, and two zooms of
the time-sequence graph of the CUBIC run (the first fast recovery, and the outage's RTO),
and prints the table the document quotes. The same seed draws the same figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..tcp.config import Congestion, TcpConfig
from .pathsim import SimPath, SimResult, simulate
from .plot import chart_svg, cwnd_chart, render_time_sequence

SIZE = 50_000_000
PATH = SimPath(bits_per_second=20e6, queue=50, delay=0.02, loss=0.00002, seed=1,
               outage=(12.0, 0.3))
BUFFERS = 4 << 20  # enough send and receive buffer that neither limits the window


@dataclass(frozen=True, slots=True)
class Run:
    congestion: Congestion
    result: SimResult

    def row(self) -> str:
        r = self.result
        rate = r.size * 8 / r.elapsed / 1e6
        return (f"| {self.congestion.value} | {'yes' if r.intact else 'NO'} | {r.elapsed:.2f} s "
                f"| {rate:.1f} Mbit/s | {r.queue_drops} | {r.random_losses} | {r.timeouts} |")


def run(congestion: Congestion, *, size: int = SIZE, record: bool = False) -> Run:
    config = TcpConfig(recv_buffer=BUFFERS, send_buffer=BUFFERS, congestion=congestion)
    return Run(congestion, simulate(size, PATH, config, record=record))


def _first_reduction(result: SimResult) -> float:
    return next(s.time for s in result.samples if s.ssthresh < 1 << 29)


def draw(out: Path, runs: list[Run]) -> list[Path]:
    """The figures, into `out`; returns their paths."""
    written = []
    rate = f"{PATH.bits_per_second / 1e6:g} Mbit/s"
    for r in runs:
        name = r.congestion.value
        samples = [(s.time, s.cwnd, s.ssthresh) for s in r.result.samples]
        chart = cwnd_chart(
            samples,
            f"{name}: cwnd and ssthresh, {SIZE // 1_000_000} MB over {rate}",
            f"queue {PATH.queue} packets, {PATH.delay * 1000:g} ms each way, random loss "
            f"{PATH.loss:g}, outage at {PATH.outage[0] if PATH.outage else 0:g} s; "
            f"{r.result.elapsed:.2f} s, {r.result.queue_drops} queue drops",
        )
        path = out / f"congestion-{name}.svg"
        path.write_text(chart_svg(chart), encoding="utf-8")
        written.append(path)
    recorded = next(r for r in runs if r.result.packets)
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / f"{recorded.congestion.value}.pcap"
        recorded.result.write_pcap(str(pcap))
        start = _first_reduction(recorded.result)
        assert PATH.outage is not None
        windows = {
            "recovery": (start - 0.03, start + 0.27),
            "rto": (PATH.outage[0] - 0.1, PATH.outage[0] + 1.7),
        }
        for label, window in windows.items():
            path = out / f"congestion-{recorded.congestion.value}-{label}.svg"
            render_time_sequence(pcap, path, window=window)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"),
                        help="where the SVG files go (default docs/images)")
    args = parser.parse_args(argv)
    runs = [run(Congestion.NEWRENO), run(Congestion.CUBIC, record=True)]
    print("| congestion | intact | time | throughput | queue drops | lost on the path | RTOs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(r.row())
    for path in draw(args.out, runs):
        print(f"wrote {path}")
    return 0 if all(r.result.intact for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
