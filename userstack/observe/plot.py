"""`userstack plot`: a captured connection as tcptrace's time-sequence graph, and lines over
time (cwnd and ssthresh from a simulation) as SVG.

The time-sequence graph is the picture of a bulk transfer that tcptrace drew and Wireshark
copies (Statistics > TCP Stream Graphs): time across, sequence number up, for one direction
of one connection. Each data segment is a vertical bar from its first to its last byte, in
red when it is a retransmission; the receiver's cumulative ACK is a green step line under
the bars and the right edge of its window (ACK + window) a gold one above them; SACK
blocks are blue bars at the time of the ACK that carried them. The slope of the bars is
the throughput; a flat stretch of the ACK line under a fence of red bars is a loss and its
recovery; bars pressed against the window line mean the receiver, not the network, limits.
(The window line never stretches the axes: with a large receive buffer it runs above the
picture, and only where it comes near the data is it drawn.)

Sequence numbers are relative to the sender's ISN (transfers below 4 GiB), times to the
first segment of the connection. Where there are more segments than pixels, each pixel
column draws one bar from the lowest to the highest byte sent in it, and each line its
lowest, highest and last value there, so the picture stays the same and the file small.

`chart_svg` draws any such figure (lines and bars on axes); `simulate` in pathsim.py feeds
it cwnd and ssthresh.
"""

from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..wire.errors import WireError
from ..wire.tcp import TcpFlags
from .replay import (
    Side,
    TcpConversation,
    add_capture_arguments,
    classify,
    find_connections,
    read_capture,
)
from .svg import SVG_NS, document, element, xy

_WIDTH, _HEIGHT = 980, 600
_LEFT, _RIGHT, _TOP, _BOTTOM = 96, 24, 104, 64  # the plot area's margins
_INK = "#1d2b4f"
_RED = "#c0392b"
_GREEN = "#2e8b57"
_GOLD = "#c79a1e"
_BLUE = "#3a7bd5"

_STYLE = """
text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; fill: #1d2b4f; }
.title { font-size: 17px; font-weight: bold; }
.sub { font-size: 12px; fill: #555; }
.tick { font-size: 11px; fill: #555; }
.axis { font-size: 12px; }
.legend { font-size: 12px; }
.note { font-size: 12px; fill: #555; }
"""


@dataclass(frozen=True, slots=True)
class Line:
    """A line through (x, y) points; `step` holds each value until the next point."""

    name: str
    color: str
    points: Sequence[tuple[float, float]]
    step: bool = True
    dashed: bool = False
    stretches: bool = True  # False: drawn where it falls inside the axes, never widens them


@dataclass(frozen=True, slots=True)
class Bars:
    """Vertical bars (x, y_low, y_high)."""

    name: str
    color: str
    bars: Sequence[tuple[float, float, float]]
    width: float = 2.0
    opacity: float = 1.0


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    subtitle: str
    x_label: str
    y_label: str
    lines: Sequence[Line] = ()
    bars: Sequence[Bars] = ()
    notes: Sequence[str] = ()
    y_bytes: bool = True  # y values are bytes: label the ticks in B, kB or MB
    fit: bool = False  # axes from the data's lowest values, not from 0 (a zoomed view)


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _byte_label(value: float, top: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if top >= 10 * size:
            return f"{value / size:g} {unit}"
    return f"{value:g} B"


@dataclass(slots=True)
class _Axes:
    x_low: float
    x_high: float
    y_low: float
    y_high: float
    width: float = _WIDTH - _LEFT - _RIGHT
    height: float = _HEIGHT - _TOP - _BOTTOM

    def x(self, v: float) -> float:
        return _LEFT + (v - self.x_low) / (self.x_high - self.x_low or 1) * self.width

    def y(self, v: float) -> float:
        return _TOP + self.height - (v - self.y_low) / (self.y_high - self.y_low or 1) * self.height


def _extent(chart: Chart) -> _Axes:
    xs = [p[0] for line in chart.lines for p in line.points]
    xs += [b[0] for group in chart.bars for b in group.bars]
    ys = [p[1] for line in chart.lines if line.stretches for p in line.points]
    ys += [v for group in chart.bars for b in group.bars for v in b[1:]]
    x_low, x_high = min(xs, default=0.0), max(xs, default=1.0)
    y_low, y_high = min(ys, default=0.0), max(ys, default=1.0)
    if not chart.fit:
        x_low, y_low = min(x_low, 0.0), 0.0
    margin = (y_high - y_low) * 0.04 or 1.0
    return _Axes(x_low, x_high if x_high > x_low else x_low + 1, max(y_low - margin, 0.0),
                 y_high + margin)


def _decimated_bars(bars: Iterable[tuple[float, float, float]], axes: _Axes) -> list[tuple]:
    """One bar per pixel column: from the lowest to the highest value in it."""
    columns: dict[int, list[float]] = {}
    for x, low, high in bars:
        column = round(axes.x(x))
        span = columns.get(column)
        if span is None:
            columns[column] = [low, high]
        else:
            span[0], span[1] = min(span[0], low), max(span[1], high)
    return [(column, span[0], span[1]) for column, span in sorted(columns.items())]


def _line_path(line: Line, axes: _Axes) -> str:
    """The path of a line, with each pixel column's points reduced to first, lowest, highest
    and last (a step line moves across, then up or down, at each point)."""
    out: list[str] = []
    column: int | None = None
    values: list[float] = []

    def flush() -> None:
        if column is None:
            return
        keep = [values[0], min(values), max(values), values[-1]]
        for v in keep:
            out.append(xy(column, axes.y(v)))

    for x, v in line.points:
        c = round(axes.x(x))
        if c != column:
            flush()
            if line.step and column is not None:
                out.append(xy(c, axes.y(values[-1])))  # across at the old value
            column, values = c, []
        values.append(v)
    flush()
    return ("M" + " L".join(out)) if out else ""


def chart_svg(chart: Chart) -> str:
    """The figure as an SVG document."""
    axes = _extent(chart)
    height = _HEIGHT + 18 * len(chart.notes)
    svg = ET.Element("svg", xmlns=SVG_NS, width=str(_WIDTH), height=str(height),
                     viewBox=f"0 0 {_WIDTH} {height}")
    element(svg, "title", chart.title)
    element(svg, "style", _STYLE)
    element(svg, "rect", width="100%", height="100%", fill="#ffffff")
    element(svg, "text", chart.title, x=16, y=30, class_="title")
    element(svg, "text", chart.subtitle, x=16, y=50, class_="sub")
    _grid(svg, axes, chart)
    clip = element(element(svg, "defs"), "clipPath", id="plot-area")
    element(clip, "rect", x=_LEFT, y=_TOP, width=axes.width, height=axes.height)
    plot = element(svg, "g", clip_path="url(#plot-area)")
    for group in chart.bars:
        bars = _decimated_bars(group.bars, axes)
        d = " ".join(f"M{xy(x, axes.y(low))}V{axes.y(high):.1f}" for x, low, high in bars)
        element(plot, "path", d=d, stroke=group.color, stroke_width=group.width, fill="none",
                stroke_opacity=group.opacity, class_=f"bars {group.name}")
    for line in chart.lines:
        extra = {"stroke_dasharray": "6 4"} if line.dashed else {}
        element(plot, "path", d=_line_path(line, axes), stroke=line.color, stroke_width=1.6,
                fill="none", class_=f"line {line.name}", **extra)
    _legend(svg, chart)
    for i, note in enumerate(chart.notes):
        element(svg, "text", note, x=16, y=_HEIGHT + 18 * i, class_="note")
    return document(svg)


def _grid(svg: ET.Element, axes: _Axes, chart: Chart) -> None:
    grid = element(svg, "g", class_="grid")
    bottom, right = _TOP + axes.height, _LEFT + axes.width
    for t in nice_ticks(axes.x_low, axes.x_high):
        x = axes.x(t)
        element(grid, "line", x1=x, y1=_TOP, x2=x, y2=bottom, stroke="#e4e4e4")
        element(grid, "text", f"{t:g}", x=x, y=bottom + 16, text_anchor="middle", class_="tick")
    for v in nice_ticks(axes.y_low, axes.y_high):
        y = axes.y(v)
        element(grid, "line", x1=_LEFT, y1=y, x2=right, y2=y, stroke="#e4e4e4")
        label = _byte_label(v, axes.y_high) if chart.y_bytes else f"{v:g}"
        element(grid, "text", label, x=_LEFT - 6, y=y + 4, text_anchor="end", class_="tick")
    element(grid, "rect", x=_LEFT, y=_TOP, width=axes.width, height=axes.height,
            fill="none", stroke="#999")
    element(svg, "text", chart.x_label, x=_LEFT + axes.width / 2, y=bottom + 40,
            text_anchor="middle", class_="axis")
    element(svg, "text", chart.y_label, x=16, y=_TOP - 12, class_="axis")


def _legend(svg: ET.Element, chart: Chart) -> None:
    x = 16.0
    items = [(b.name, b.color, False) for b in chart.bars]
    items += [(line.name, line.color, line.dashed) for line in chart.lines]
    for name, color, dashed in items:
        extra = {"stroke_dasharray": "6 4"} if dashed else {}
        element(svg, "line", x1=x, y1=68, x2=x + 22, y2=68, stroke=color,
                stroke_width=3, **extra)
        element(svg, "text", name, x=x + 28, y=72, class_="legend")
        x += 40 + 7.3 * len(name)


# ---- the time-sequence graph ----------------------------------------------------------


@dataclass(slots=True)
class SequenceTrace:
    """One direction of a connection, as the time-sequence graph draws it: times from the
    connection's first segment, sequence numbers relative to the sender's ISN."""

    conversation: TcpConversation
    sender: Side
    data: list[tuple[float, float, float]] = field(default_factory=list)
    retransmitted: list[tuple[float, float, float]] = field(default_factory=list)
    acks: list[tuple[float, float]] = field(default_factory=list)
    window: list[tuple[float, float]] = field(default_factory=list)
    sacks: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def payload(self) -> int:
        """Bytes of sequence space sent (relative sequence numbers start at 1)."""
        return int(max((b[2] for b in self.data), default=1)) - 1


def _busier_side(conv: TcpConversation) -> Side:
    sent = {side: 0 for side in Side}
    for p in conv.segments:
        sent[conv.side(p)] += len(p.segment.payload)
    return Side.SERVER if sent[Side.SERVER] > sent[Side.CLIENT] else Side.CLIENT


def _window_shift(conv: TcpConversation, side: Side) -> int:
    """How far `side`'s window field is scaled: its SYN's shift, if both SYNs offered one
    (RFC 7323 2.2); never in the SYNs themselves."""
    shifts = {}
    for p in conv.segments:
        if p.segment.flags & TcpFlags.SYN:
            shifts.setdefault(conv.side(p), p.segment.options.window_scale)
    if shifts.get(Side.CLIENT) is None or shifts.get(Side.SERVER) is None:
        return 0
    return min(shifts[side] or 0, 14)


def sequence_trace(conv: TcpConversation, sender: Side | None = None) -> SequenceTrace:
    """The graph's data for `sender`'s direction (default: the side that sent more)."""
    sender = sender or _busier_side(conv)
    isn = conv.isn(sender)
    if isn is None:
        raise LookupError(f"the {sender.value} sent no SYN in this capture")
    delivery = classify(conv)
    shift = _window_shift(conv, sender.other)
    trace = SequenceTrace(conv, sender)
    t0 = conv.segments[0].time

    def rel(n: object) -> float:
        return float((n - isn) % (1 << 32))  # type: ignore[operator]

    for i, p in enumerate(conv.segments):
        seg, t = p.segment, p.time - t0
        if conv.side(p) is sender:
            if seg.payload:
                start = rel(seg.seq)
                bar = (t, start, start + len(seg.payload))
                (trace.retransmitted if i in delivery.retransmitted else trace.data).append(bar)
            continue
        if not seg.flags & TcpFlags.ACK or seg.flags & TcpFlags.RST:
            continue
        ack = rel(seg.ack)
        trace.acks.append((t, ack))
        window = seg.window << (0 if seg.flags & TcpFlags.SYN else shift)
        trace.window.append((t, ack + window))
        trace.sacks.extend((t, rel(left), rel(right)) for left, right in seg.options.sack_blocks)
    return trace


def _between(bars: Sequence[tuple[float, float, float]], start: float, end: float) -> list:
    return [b for b in bars if start <= b[0] <= end]


def _line_between(points: Sequence[tuple[float, float]], start: float, end: float) -> list:
    """The points of a step line in [start, end], with its value at `start` carried in."""
    before = [p for p in points if p[0] < start]
    inside = [p for p in points if start <= p[0] <= end]
    return ([(start, before[-1][1])] if before else []) + inside


def time_sequence_chart(
    trace: SequenceTrace, source: str, window: tuple[float, float] | None = None
) -> Chart:
    """The chart of a trace; `window` (start, end), in seconds, zooms into part of it."""
    conv = trace.conversation
    src, dst = (conv.client, conv.server) if trace.sender is Side.CLIENT else (
        conv.server, conv.client)
    duration = conv.segments[-1].time - conv.segments[0].time
    sent = len(trace.data) + len(trace.retransmitted)
    start, end = window or (0.0, duration)
    shown = f", shown from {start:g} s to {end:g} s" if window else ""
    return Chart(
        title=f"time-sequence graph: {src} \u2192 {dst}",
        subtitle=f"{source}: {sent} data segments, {len(trace.retransmitted)} retransmitted, "
        f"{trace.payload} bytes in {duration:.3f} s{shown}",
        x_label="time since the first segment (s)",
        y_label=f"sequence number, relative to the ISN of {src}",
        bars=(Bars("data", _INK, _between(trace.data, start, end)),
              Bars("retransmission", _RED, _between(trace.retransmitted, start, end)),
              Bars("SACK", _BLUE, _between(trace.sacks, start, end), opacity=0.45)),
        lines=(Line("ACK", _GREEN, _line_between(trace.acks, start, end)),
               Line("window", _GOLD, _line_between(trace.window, start, end),
                    stretches=False)),
        fit=window is not None,
    )


def render_time_sequence(
    pcap_path: str | Path,
    out_path: str | Path,
    index: int = 0,
    sender: Side | None = None,
    window: tuple[float, float] | None = None,
) -> SequenceTrace:
    """Draw connection `index` of the capture (`window`: only that stretch of time);
    returns what was drawn."""
    conversations = find_connections(read_capture(pcap_path).segments)
    if not 0 <= index < len(conversations):
        raise LookupError(f"{pcap_path}: no connection {index} ({len(conversations)} found)")
    trace = sequence_trace(conversations[index], sender)
    chart = time_sequence_chart(trace, Path(pcap_path).name, window)
    Path(out_path).write_text(chart_svg(chart), encoding="utf-8")
    return trace


def add_plot_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `plot` with a CLI's subcommands (cli.SUBCOMMANDS' shape: run=run_plot)."""
    p = subparsers.add_parser(
        "plot",
        help="draw a captured TCP connection as a time-sequence graph (SVG)",
        description="Draw one direction of one TCP connection of a pcap file as tcptrace's "
        "time-sequence graph: data segments, retransmissions, the ACK and window lines, SACKs.",
    )
    add_capture_arguments(p, "-tsg.svg")
    p.add_argument("--sender", choices=[s.value for s in Side],
                   help="whose data to draw (default: the side that sent more)")
    p.add_argument("--window", type=float, nargs=2, metavar=("FROM", "TO"),
                   help="zoom in: only the segments from FROM to TO seconds")
    p.set_defaults(run=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    """The `plot` subcommand, given parsed arguments; returns the exit status."""
    out = args.output or args.capture.with_name(args.capture.stem + "-tsg.svg")
    sender = Side(args.sender) if args.sender else None
    try:
        window = tuple(args.window) if args.window else None
        trace = render_time_sequence(args.capture, out, args.connection, sender, window)
    except (OSError, WireError, LookupError) as e:
        print(f"userstack plot: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {trace.payload} bytes from the {trace.sender.value}, "
          f"{len(trace.retransmitted)} retransmitted segments")
    return 0


# ---- cwnd and ssthresh over time ------------------------------------------------------

_NO_SSTHRESH = 1 << 29  # above this, ssthresh is still RFC 5681's "arbitrarily high"


def cwnd_chart(
    samples: Sequence[tuple[float, int, int]], title: str, subtitle: str, notes: Sequence[str] = ()
) -> Chart:
    """cwnd and ssthresh from (time, cwnd, ssthresh) samples; ssthresh is drawn once it
    has been set, not while it is still "arbitrarily high"."""
    return Chart(
        title=title,
        subtitle=subtitle,
        x_label="time (s)",
        y_label="bytes",
        lines=(
            Line("cwnd", _BLUE, [(t, c) for t, c, _ in samples]),
            Line("ssthresh", _GOLD, [(t, s) for t, _, s in samples if s < _NO_SSTHRESH],
                 dashed=True),
        ),
        notes=notes,
    )
