"""`userstack ladder`: a recorded TCP connection drawn as a ladder (sequence) diagram.

The figure textbooks and RFC-explaining blog posts draw: the client (the side that sent
the first SYN) on the left, the server on the right, time flowing down, one sloping
arrow per captured segment labelled tcpdump-style (``[S.] seq 0 ack 1 win 65535``), and
each side's RFC 9293 state written beside its line whenever it changes.

What is observed and what is inferred (the details are in replay.py's docstring):
- arrows are the capture itself: one per captured segment, at the capture time. A
  capture has one timestamp per packet and does not say where it was taken, so every
  arrow slopes down by the same amount; only its top is placed in time.
- sequence and acknowledgment numbers are relative to each side's ISN, as textbooks
  number them (tcpdump -S would print them absolute).
- retransmissions and losses are inferred from sequence numbers and ACKs: a resent
  segment is drawn red and dashed, a presumed-lost one ends in an X halfway across.
  A capture made by userstack's fault link (pcapng) records its drops, corruptions and
  duplicates: those are drawn as what they were, not inferred (replay.py).
- states are not in the capture at all: they come from replaying the segments through
  userstack's own sans-I/O core (replay.py), so they show what RFC 9293 says each side
  was in. Where the replay cannot follow the capture, a note under the figure says so.

Layout: y grows with capture time: the median gap between segments is the least spacing
that keeps labels apart, longer gaps grow with the log of their length, and idle gaps (a
second or more, or a hundred times the median) are cut short and marked with a break on
both lines. The time column gives the real timestamps.

The SVG is written by hand with xml.etree (which escapes every text and attribute; svg.py).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..wire.errors import WireError
from ..wire.pcapng import Fault
from ..wire.seq import SeqNum
from ..wire.tcp import TcpFlags, TcpSegment
from .replay import (
    Anchor,
    Delivery,
    Replay,
    Side,
    StateMark,
    TcpConversation,
    add_capture_arguments,
    classify,
    find_connections,
    read_capture,
    replay,
)
from .svg import SVG_NS, document
from .svg import attr as _attr
from .svg import element as _el
from .svg import xy as _xy
from .trace import flag_letters

# Geometry, in px.
_WIDTH = 980
_TIME_X = 16  # left edge of the "#  time" column
_CLIENT_X = 300  # the two time lines
_SERVER_X = 820
_SLOPE = 26  # how far every arrow drops on its way across
_LOST_AT = 0.6  # how far across a lost segment gets
_MIN_GAP = 40  # least distance between two arrows' tops: above _SLOPE, so they never cross
_MAX_GAP = 3 * _MIN_GAP
_BREAK_GAP = 56  # what a gap of _BREAK_RATIO times the median or _BREAK_SECONDS shrinks to
_BREAK_RATIO = 100
_BREAK_SECONDS = 1.0
_TOP = 150  # y of the first arrow
_BOX_H = 18
_CHAR_W = 7.0  # monospace advance at the state-box size, for box widths
_NOTE_CHAR_W = 7.3  # at the notes' size (12px; DejaVu Sans Mono is 0.6 em wide)

_INK = "#1d2b4f"
_ACK_INK = "#5b6b8c"
_RED = "#c0392b"
_STATE_FILL = "#fff4d6"
_STATE_EDGE = "#b08a2e"

_STYLE = """
text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; fill: #1d2b4f; }
.title { font-size: 17px; font-weight: bold; }
.sub { font-size: 12px; fill: #555; }
.head { font-size: 13px; font-weight: bold; }
.addr { font-size: 12px; }
.label { font-size: 12px; paint-order: stroke; stroke: #fff; stroke-width: 4px;
         stroke-linejoin: round; }
.retx .label, .lost .label { fill: #c0392b; }
.time { font-size: 11px; fill: #777; }
.state { font-size: 11px; font-weight: bold; fill: #5a4410; }
.note { font-size: 12px; fill: #555; }
.brk { font-size: 11px; fill: #777; font-style: italic; }
"""


@dataclass(frozen=True, slots=True)
class Ladder:
    """What render_ladder drew, for the caller's message and for tests."""

    conversation: TcpConversation
    delivery: Delivery
    replay: Replay
    svg: str


def segment_label(seg: TcpSegment, seq_base: SeqNum | None, ack_base: SeqNum | None) -> str:
    """tcpdump-style, with seq relative to the sender's ISN and ack to the receiver's.

    Options are shown on SYNs (what was negotiated) and SACK blocks wherever they are.
    """
    seq = _relative(seg.seq, seq_base)
    parts = [f"[{flag_letters(seg.flags)}]"]
    parts.append(f"seq {seq}:{seq + len(seg.payload)}" if seg.payload else f"seq {seq}")
    if seg.flags & TcpFlags.ACK:
        parts.append(f"ack {_relative(seg.ack, ack_base)}")
    parts.append(f"win {seg.window}")
    opts = seg.options
    shown = []
    if seg.flags & TcpFlags.SYN:  # what was negotiated; later options would only clutter
        if opts.mss is not None:
            shown.append(f"mss {opts.mss}")
        if opts.sack_permitted:
            shown.append("sackOK")
        if opts.timestamps is not None:
            shown.append("TS")
        if opts.window_scale is not None:
            shown.append(f"wscale {opts.window_scale}")
    shown += [
        f"sack {_relative(left, ack_base)}:{_relative(right, ack_base)}"
        for left, right in opts.sack_blocks
    ]
    if shown:
        parts.append("<" + ",".join(shown) + ">")
    if seg.payload:
        parts.append(f"len {len(seg.payload)}")
    return " ".join(parts)


def _relative(n: SeqNum, base: SeqNum | None) -> int:
    return n.value if base is None else (n - base) % (1 << 32)


def _layout(times: Sequence[float]) -> tuple[list[float], list[tuple[float, float]]]:
    """The y of each arrow's top, and the (y, seconds) of every compressed gap.

    A gap up to the median one gets the minimum spacing; longer gaps grow with the log
    of how much longer they are, up to _MAX_GAP; a gap far beyond that (an idle
    connection) is cut short and marked with a break.
    """
    gaps = [b - a for a, b in itertools.pairwise(times)]
    positive = [g for g in gaps if g > 0]
    typical = statistics.median(positive) if positive else 0.0
    ys = [float(_TOP)]
    breaks: list[tuple[float, float]] = []
    for gap in gaps:
        ratio = gap / typical if typical else 1.0
        dy = _MIN_GAP * (1 + math.log10(ratio)) if ratio > 1 else _MIN_GAP
        if ratio >= _BREAK_RATIO or gap >= _BREAK_SECONDS:
            breaks.append((ys[-1] + _SLOPE / 2 + _BREAK_GAP / 2, gap))
            dy = _BREAK_GAP + _SLOPE / 2
        ys.append(ys[-1] + min(dy, _MAX_GAP))
    return ys, breaks


def _cross(parent: ET.Element, x: float, y: float) -> None:
    """The X where a lost segment ends."""
    _el(parent, "path", d=f"M{_xy(x - 7, y - 7)} l14,14 M{_xy(x - 7, y + 7)} l14,-14",
        stroke=_RED, stroke_width=2.5)


def _defs(svg: ET.Element) -> None:
    defs = _el(svg, "defs")
    for name, color in (("head", _INK), ("head-ack", _ACK_INK), ("head-red", _RED)):
        marker = _el(
            defs, "marker", id=name, viewBox="0 0 10 10", refX=9, refY=5,
            markerWidth=9, markerHeight=9, markerUnits="userSpaceOnUse", orient="auto",
        )
        _el(marker, "path", d="M0,1 L10,5 L0,9 z", fill=color)
    _el(svg, "style").text = _STYLE


def ladder_svg(
    conv: TcpConversation,
    delivery: Delivery,
    states: Replay,
    subtitle: str,
    notes: Sequence[str] = (),
) -> str:
    """The whole figure as an SVG document; ``notes`` go under it with the replay's."""
    times = [p.time for p in conv.segments]
    ys, breaks = _layout(times)
    boxes = _place_states(states.marks, ys)
    bottom = max([ys[-1] + _SLOPE + 34, *(b.top + _BOX_H + 12 for b in boxes)])
    isn = {side: conv.isn(side) for side in Side}

    lines = _wrapped([
        *notes,
        f"seq/ack are relative to each side's ISN (client {_isn_text(isn[Side.CLIENT])}, "
        f"server {_isn_text(isn[Side.SERVER])}); time in seconds since packet "
        f"#{conv.segments[0].number}",
        "states: replayed through userstack's RFC 9293 core; retransmission and loss: "
        "inferred from seq/ack",
        *states.notes,
    ])
    legend_y = bottom + 18
    height = legend_y + 30 + 18 * len(lines) + 12

    svg = ET.Element(
        "svg", xmlns=SVG_NS, width=str(_WIDTH), height=f"{height:.0f}",
        viewBox=f"0 0 {_WIDTH} {height:.0f}",
    )
    _el(svg, "title", f"TCP {conv.client} > {conv.server}")
    _defs(svg)
    _el(svg, "rect", width="100%", height="100%", fill="#ffffff")
    _el(svg, "text", f"TCP  {conv.client}  \u2192  {conv.server}", x=_TIME_X, y=30,
        class_="title")
    _el(svg, "text", subtitle, x=_TIME_X, y=50, class_="sub")

    _heads(svg, conv)
    _lines(svg, ys[0] - 50, bottom, breaks)
    _el(svg, "text", "#   time", x=_TIME_X, y=ys[0] - 22, class_="time")

    arrows = _el(svg, "g", class_="segments")
    t0 = times[0]
    for i, p in enumerate(conv.segments):
        side = conv.side(p)
        label = segment_label(p.segment, isn[side], isn[side.other])
        if p.fault is Fault.CORRUPTED or p.fault is Fault.DUPLICATED:  # a drop has its X
            label += f"  ({'duplicate' if p.fault is Fault.DUPLICATED else 'corrupted'})"
        _arrow(arrows, i, p.number, side, ys[i], label, i in delivery.retransmitted,
               i in delivery.lost, p.segment)
        _el(svg, "text", f"#{p.number:<3} {p.time - t0:.6f}", x=_TIME_X, y=ys[i] + 4,
            class_="time")
    _draw_states(svg, boxes)
    _legend(svg, legend_y, lines)
    return document(svg)


def _wrapped(notes: Sequence[str]) -> list[str]:
    """Notes broken to the figure's width; a note's later lines are indented."""
    width = int((_WIDTH - 2 * _TIME_X) / _NOTE_CHAR_W)
    return [
        line
        for note in notes
        for line in textwrap.wrap(note, width, subsequent_indent="  ", break_on_hyphens=False)
    ]


def _isn_text(n: SeqNum | None) -> str:
    return "unseen" if n is None else str(n.value)


def _heads(svg: ET.Element, conv: TcpConversation) -> None:
    for x, role, ep in ((_CLIENT_X, "client", conv.client), (_SERVER_X, "server", conv.server)):
        w = max(len(str(ep)), 6) * _CHAR_W + 24
        _el(svg, "rect", x=x - w / 2, y=66, width=w, height=42, rx=5, fill="#eef2fa",
            stroke=_INK, stroke_width=1.2)
        _el(svg, "text", role, x=x, y=83, text_anchor="middle", class_="head")
        _el(svg, "text", str(ep), x=x, y=100, text_anchor="middle", class_="addr")


def _lines(svg: ET.Element, top: float, bottom: float, breaks: list[tuple[float, float]]) -> None:
    """The two time lines, interrupted by a zigzag at each compressed gap."""
    g = _el(svg, "g", class_="timelines", stroke=_INK, stroke_width=2, fill="none")
    for x in (_CLIENT_X, _SERVER_X):
        y = top
        for by, _ in breaks:
            _el(g, "line", x1=x, y1=y, x2=x, y2=by - 9)
            _el(g, "path", d=f"M{_xy(x - 7, by - 5)} l14,-6 M{_xy(x - 7, by + 5)} l14,-6",
                stroke_width=1.5)
            y = by + 3
        _el(g, "line", x1=x, y1=y, x2=x, y2=bottom)
        _el(g, "path", d=f"M{_xy(x, bottom)} l-5,-9 h10 z", fill=_INK, stroke="none")
    for by, seconds in breaks:
        _el(svg, "text", f"\u2248 {_duration(seconds)} later", x=_TIME_X, y=by + 4,
            class_="brk")


def _duration(seconds: float) -> str:
    ms = round(seconds * 1000, 1)
    return f"{seconds:.4g} s" if ms >= 1000 else f"{ms:g} ms"


def _arrow(
    parent: ET.Element, index: int, number: int, side: Side, y: float, label: str,
    retransmitted: bool, lost: bool, seg: TcpSegment,
) -> None:
    x1, x2 = (_CLIENT_X, _SERVER_X) if side is Side.CLIENT else (_SERVER_X, _CLIENT_X)
    y2 = y + _SLOPE
    kind = ["segment", side.value]
    if retransmitted:
        kind.append("retx")
    if lost:
        kind.append("lost")
    g = _el(parent, "g", class_=" ".join(kind), data_packet=number, data_index=index)
    pure_ack = not seg.seg_len and not seg.flags & TcpFlags.RST
    color = _RED if retransmitted or lost else _ACK_INK if pure_ack else _INK
    line = {"stroke": color, "stroke_width": 1.4 if pure_ack else 1.8}
    if retransmitted:
        line["stroke_dasharray"] = "7 4"
    # a lost segment stops midway, with an X where it was lost (as in Stevens' figures)
    fx, fy = x1 + (x2 - x1) * _LOST_AT, y + _SLOPE * _LOST_AT
    if lost:
        _el(g, "line", x1=x1, y1=y, x2=fx, y2=fy, **line)
    else:
        head = "head-red" if color == _RED else "head-ack" if pure_ack else "head"
        _el(g, "line", x1=x1, y1=y, x2=x2, y2=y2, marker_end=f"url(#{head})", **line)
    _el(g, "circle", cx=x1, cy=y, r=2.5, fill=color)
    angle = math.degrees(math.atan2(_SLOPE, abs(x2 - x1))) * (1 if x2 > x1 else -1)
    # on the arrow's middle; a lost one's from its start, to stay clear of the X
    at, anchor = (0.06, "start" if x2 > x1 else "end") if lost else (0.5, "middle")
    mx, my = x1 + (x2 - x1) * at, y + _SLOPE * at
    text = label + ("  (retransmission)" if retransmitted else "")
    _el(g, "text", text, x=mx, y=my - 5, text_anchor=anchor, class_="label",
        transform=f"rotate({angle:.2f} {_attr(mx)} {_attr(my)})")
    if lost:  # over the label, so the X is never hidden by the label's halo
        _cross(g, fx, fy)


@dataclass(frozen=True, slots=True)
class _Box:
    mark: StateMark
    y: float  # where on the time line the state begins
    x: float  # the box
    top: float
    width: float


def _place_states(marks: list[StateMark], ys: list[float]) -> list[_Box]:
    """Each side's state boxes beside its line, in replay order, pushed down so none
    overlap (a box lower than its anchor gets a leader line back to it)."""
    end_y = ys[-1] + _SLOPE + 30  # TIME-WAIT's 2*MSL: after everything captured
    boxes = []
    for side in Side:
        line_x = _CLIENT_X if side is Side.CLIENT else _SERVER_X
        last_bottom = -math.inf
        for mark in (m for m in marks if m.side is side):
            y = _anchor_y(mark, ys, end_y)
            width = len(str(mark.state)) * _CHAR_W + 14
            gap = 16 if mark.anchor is Anchor.AFTER else 3  # room for "after 2*MSL"
            top = max(y - _BOX_H / 2, last_bottom + gap)
            last_bottom = top + _BOX_H
            x = line_x - 12 - width if side is Side.CLIENT else line_x + 12
            boxes.append(_Box(mark, y, x, top, width))
    return boxes


def _draw_states(svg: ET.Element, boxes: list[_Box]) -> None:
    g = _el(svg, "g", class_="states")
    for b in boxes:
        text, side = str(b.mark.state), b.mark.side
        line_x = _CLIENT_X if side is Side.CLIENT else _SERVER_X
        edge = b.x + b.width if side is Side.CLIENT else b.x
        sg = _el(g, "g", class_=f"state-mark {side.value}", data_state=text)
        _el(sg, "path", d=f"M{_xy(line_x, b.y)} L{_xy(edge, b.top + _BOX_H / 2)}",
            stroke=_STATE_EDGE, stroke_width=1, fill="none")
        _el(sg, "rect", x=b.x, y=b.top, width=b.width, height=_BOX_H, rx=4, fill=_STATE_FILL,
            stroke=_STATE_EDGE, stroke_width=1)
        _el(sg, "text", text, x=b.x + b.width / 2, y=b.top + 13, text_anchor="middle",
            class_="state")
        if b.mark.anchor is Anchor.AFTER:
            _el(sg, "text", "after 2\u00b7MSL", x=b.x + b.width / 2, y=b.top - 4,
                text_anchor="middle", class_="time")


def _anchor_y(mark: StateMark, ys: list[float], end_y: float) -> float:
    if mark.anchor is Anchor.BEFORE:
        return ys[0] - (_SLOPE / 2 if mark.side is Side.SERVER else 0)
    if mark.anchor is Anchor.SENT:
        return ys[mark.index]
    if mark.anchor is Anchor.ARRIVED:
        return ys[mark.index] + _SLOPE
    return end_y


def _legend(svg: ET.Element, y: float, notes: list[str]) -> None:
    g = _el(svg, "g", class_="legend")
    x = _TIME_X
    for text, color, dash, head in (
        ("segment", _INK, None, "head"),
        ("pure ACK", _ACK_INK, None, "head-ack"),
        ("retransmission", _RED, "7 4", "head-red"),
    ):
        extra = {"stroke_dasharray": dash} if dash else {}
        _el(g, "line", x1=x, y1=y, x2=x + 44, y2=y, stroke=color, stroke_width=1.8,
            marker_end=f"url(#{head})", **extra)
        _el(g, "text", text, x=x + 52, y=y + 4, class_="note")
        x += 60 + len(text) * _CHAR_W + 24
    _el(g, "line", x1=x, y1=y, x2=x + 30, y2=y, stroke=_RED, stroke_width=1.8)
    _cross(g, x + 36, y)
    _el(g, "text", "presumed lost", x=x + 52, y=y + 4, class_="note")
    _el(g, "rect", x=x + 170, y=y - _BOX_H / 2, width=60, height=_BOX_H, rx=4,
        fill=_STATE_FILL, stroke=_STATE_EDGE)
    _el(g, "text", "STATE", x=x + 200, y=y + 4, text_anchor="middle", class_="state")
    _el(g, "text", "RFC 9293 state", x=x + 240, y=y + 4, class_="note")
    for i, note in enumerate(notes):
        _el(g, "text", note, x=_TIME_X, y=y + 30 + 18 * i, class_="note")


def render_ladder(
    pcap_path: str | Path, out_path: str | Path, connection: int | None = None
) -> Ladder:
    """Draw connection number ``connection`` (0-based, by first SYN; default 0) of a capture.

    Raises WireError for an unreadable capture, LookupError if there is no such connection.
    """
    capture = read_capture(pcap_path)
    conversations = find_connections(capture.segments)
    index = connection or 0
    if not 0 <= index < len(conversations):
        raise LookupError(
            f"{pcap_path}: no connection {index}: found {len(conversations)} "
            "(a connection is counted from its SYN)"
        )
    conv = conversations[index]
    delivery = classify(conv)
    recorded = bool(delivery.recorded_lost or delivery.duplicates)
    states = replay(conv, delivery)
    duration = conv.segments[-1].time - conv.segments[0].time
    subtitle = (
        f"{Path(pcap_path).name}: connection {index} of {len(conversations)}, "
        f"{len(conv.segments)} segments, {_duration(duration) if duration else '0 s'}, "
        f"{len(delivery.retransmitted)} retransmitted, {len(delivery.lost)} "
        + ("lost (recorded by the fault link)" if recorded else "presumed lost")
    )
    notes = []
    if recorded:
        notes.append(
            "losses and duplicates: as the fault link recorded them (pcapng comments), "
            "not inferred"
        )
    if capture.unchecked:
        notes.append(
            f"{capture.unchecked} packets in the capture carry a TCP checksum their sender had "
            "not filled in yet (checksum offload): read as they are"
        )
    svg = ladder_svg(conv, delivery, states, subtitle, notes)
    Path(out_path).write_text(svg, encoding="utf-8")
    return Ladder(conv, delivery, states, svg)


def list_connections(pcap_path: str | Path) -> list[str]:
    """One line per connection in the capture: index, endpoints, segments, start time."""
    capture = read_capture(pcap_path)
    conversations = find_connections(capture.segments)
    t0 = capture.segments[0].time if capture.segments else 0.0
    return [
        f"{i:3}  {c.client} > {c.server}  {len(c.segments)} segments  "
        f"from {c.segments[0].time - t0:.6f} s"
        for i, c in enumerate(conversations)
    ]


def add_ladder_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `ladder` with a CLI's subcommands (cli.SUBCOMMANDS' shape: run=run_ladder)."""
    p = subparsers.add_parser(
        "ladder",
        help="draw a captured TCP connection as an SVG ladder diagram",
        description="Draw one TCP connection of a pcap file as a ladder diagram: one arrow "
        "per segment, each side's RFC 9293 state (replayed through userstack's core).",
    )
    add_capture_arguments(p, ".svg")
    p.add_argument("--list", action="store_true", help="list the connections and exit")
    p.set_defaults(run=run_ladder)


def run_ladder(args: argparse.Namespace) -> int:
    """The `ladder` subcommand, given parsed arguments; returns the exit status."""
    try:
        if args.list:
            lines = list_connections(args.capture)
            print("\n".join(lines) if lines else f"{args.capture}: no TCP connections")
            return 0
        out = args.output or args.capture.with_suffix(".svg")
        ladder = render_ladder(args.capture, out, args.connection)
    except (OSError, WireError, LookupError) as e:
        print(f"userstack ladder: {e}", file=sys.stderr)
        return 1
    conv = ladder.conversation
    print(f"wrote {out}: {conv.client} > {conv.server}, {len(conv.segments)} segments")
    for note in ladder.replay.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
