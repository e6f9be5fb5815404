"""`userstack view FILE.pcap -o FILE.html`: one self-contained page that explains a capture.

The page needs no server and no network: its script, style and drawings are inline, and
its data (what `userstack explain` prints, as JSON) is in the page. It shows, for each
connection:

- the ladder diagram (ladder.py's SVG, inline); clicking a segment shows in the panel the
  rules the receiving endpoint applied (each with a link to its RFC section: the
  reader's browser follows it, the page itself never fetches anything), the user calls the
  sender must have made, what the replay inferred, and the receiver's TCB before and after;
- RFC 9293 Figure 5 redrawn, each state and transition an endpoint went through
  highlighted in its colour, and the states both are in at the current step outlined;
- a step control that walks the connection segment by segment: the panel follows, and
  bars show each side's send window (SND.UNA to SND.UNA+SND.WND, with what is in flight
  and cwnd) and the receive window it last advertised in the capture;
- lost segments as arrows that stop midway: those the capture implies (replay.py's
  classify), and those the fault link recorded: the packets a `serve --loss ... --pcap`
  capture marks dropped or corrupted in its comments (pcapng), or records handed in as
  `dropped` (the hook for a fault link's own list); a recorded loss never arrives, and its
  panel says what the fault link did.

The HTML is built with the standard library only; every text the page shows from the
capture goes in as JSON and is set with textContent, never parsed as HTML.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import math
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ..tcp.info import TcbInfo
from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.errors import WireError
from ..wire.ipv4 import IPPROTO_TCP
from ..wire.packet import parse_ip
from ..wire.pcapng import Fault
from ..wire.tcp import TcpFlags, TcpSegment
from .ladder import ladder_svg, segment_label
from .replay import (
    TCB_VARIABLES,
    Anchor,
    CapturedSegment,
    Delivery,
    Explained,
    Side,
    TcpConversation,
    classify,
    find_connections,
    read_capture,
    replay,
)
from .svg import SVG_NS
from .why import Bases, add_capture_arguments, bases_for, chosen, format_decision, format_value

# ---- RFC 9293 Figure 5, redrawn -----------------------------------------------------------

# (state, x, y): the RFC's layout, CLOSED drawn twice as the RFC does (top and bottom).
_BOXES = (
    ("CLOSED", 380, 40), ("LISTEN", 380, 125), ("SYN-RECEIVED", 140, 215),
    ("SYN-SENT", 620, 215), ("ESTABLISHED", 380, 300), ("FIN-WAIT-1", 140, 390),
    ("CLOSE-WAIT", 620, 390), ("FIN-WAIT-2", 140, 490), ("CLOSING", 380, 440),
    ("LAST-ACK", 620, 490), ("TIME-WAIT", 380, 580), ("CLOSED-END", 620, 580),
)
# (from, to, label) as Figure 5 labels them ("event / action").
_EDGES = (
    ("CLOSED", "LISTEN", "passive OPEN"),
    ("CLOSED", "SYN-SENT", "active OPEN / snd SYN"),
    ("LISTEN", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK"),
    ("LISTEN", "SYN-SENT", "SEND / snd SYN"),
    ("LISTEN", "CLOSED", "CLOSE"),
    ("SYN-SENT", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK"),
    ("SYN-SENT", "CLOSED", "CLOSE"),
    ("SYN-RECEIVED", "LISTEN", "rcv RST"),
    ("SYN-RECEIVED", "ESTABLISHED", "rcv ACK of SYN"),
    ("SYN-SENT", "ESTABLISHED", "rcv SYN,ACK / snd ACK"),
    ("SYN-RECEIVED", "FIN-WAIT-1", "CLOSE / snd FIN"),
    ("ESTABLISHED", "FIN-WAIT-1", "CLOSE / snd FIN"),
    ("ESTABLISHED", "CLOSE-WAIT", "rcv FIN / snd ACK"),
    ("FIN-WAIT-1", "FIN-WAIT-2", "rcv ACK of FIN"),
    ("FIN-WAIT-1", "CLOSING", "rcv FIN / snd ACK"),
    ("FIN-WAIT-2", "TIME-WAIT", "rcv FIN / snd ACK"),
    ("CLOSING", "TIME-WAIT", "rcv ACK of FIN"),
    ("CLOSE-WAIT", "LAST-ACK", "CLOSE / snd FIN"),
    ("LAST-ACK", "CLOSED-END", "rcv ACK of FIN"),
    ("TIME-WAIT", "CLOSED-END", "timeout = 2MSL"),
)
_BOX_W, _BOX_H = 128, 30


def _box_id(state: State, *, final: bool) -> str:
    """The Figure 5 box a state is drawn in (a CLOSED that ends a connection: the bottom one)."""
    return "CLOSED-END" if state is State.CLOSED and final else state.value


def figure5_svg(paths: dict[Side, list[State]]) -> str:
    """Figure 5 with every state and transition of each side's ``paths`` highlighted."""
    visited: dict[str, set[str]] = {}
    taken: dict[tuple[str, str], set[str]] = {}
    for side, states in paths.items():
        boxes = ["CLOSED"] + [_box_id(s, final=i > 0) for i, s in enumerate(states)]
        for box in boxes:
            visited.setdefault(box, set()).add(side.value)
        for a, b in itertools.pairwise(boxes):
            if a != b:
                taken.setdefault((a, b), set()).add(side.value)
    where = {name: (x, y) for name, x, y in _BOXES}
    svg = ET.Element("svg", {"class": "figure5"}, xmlns=SVG_NS, viewBox="0 0 760 620",
                     width="760", height="620")
    ET.SubElement(svg, "title").text = "RFC 9293 Figure 5: TCP connection state diagram"
    defs = ET.SubElement(svg, "defs")
    marker = ET.SubElement(defs, "marker", id="f5head", viewBox="0 0 10 10", refX="10",
                           refY="5", markerWidth="7", markerHeight="7", orient="auto")
    ET.SubElement(marker, "path", d="M0,0 L10,5 L0,10 z", fill="#555")
    pairs = {(a, b) for a, b, _ in _EDGES}
    for a, b, label in _EDGES:
        (x1, y1), (x2, y2) = where[a], where[b]
        sx, sy = _border(x1, y1, x2, y2)
        ex, ey = _border(x2, y2, x1, y1)
        if (b, a) in pairs:  # both ways between two boxes: keep the two lines apart
            length = math.hypot(ex - sx, ey - sy)
            nx, ny = (ey - sy) / length * 7, (sx - ex) / length * 7
            sx, sy, ex, ey = sx + nx, sy + ny, ex + nx, ey + ny
        who = sorted(taken.get((a, b), ()))
        g = ET.SubElement(svg, "g", {"class": " ".join(["edge", *who]), "data-from": a,
                                     "data-to": b})
        ET.SubElement(g, "line", {"marker-end": "url(#f5head)"}, x1=f"{sx:.0f}", y1=f"{sy:.0f}",
                      x2=f"{ex:.0f}", y2=f"{ey:.0f}")
        t = ET.SubElement(g, "text", x=f"{(sx + ex) / 2:.0f}", y=f"{(sy + ey) / 2 - 3:.0f}")
        t.text = label
    for name, x, y in _BOXES:
        who = sorted(visited.get(name, ()))
        g = ET.SubElement(svg, "g", {"class": " ".join(["state", *who]), "data-state": name})
        ET.SubElement(g, "rect", x=str(x - _BOX_W // 2), y=str(y - _BOX_H // 2),
                      width=str(_BOX_W), height=str(_BOX_H), rx="6")
        t = ET.SubElement(g, "text", x=str(x), y=str(y + 5))
        t.text = "CLOSED" if name == "CLOSED-END" else name
    return ET.tostring(svg, encoding="unicode")


def _border(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float]:
    """Where the line from box centre (x1, y1) towards (x2, y2) leaves the box."""
    dx, dy = x2 - x1, y2 - y1
    if dx == 0 and dy == 0:
        return x1, y1
    scale = min(
        (_BOX_W / 2) / abs(dx) if dx else float("inf"),
        (_BOX_H / 2 + 2) / abs(dy) if dy else float("inf"),
    )
    return x1 + dx * scale, y1 + dy * scale


# ---- the page's data ----------------------------------------------------------------------


def _tcb(info: TcbInfo | None, bases: Bases) -> dict[str, str] | None:
    if info is None:
        return None
    return {label: format_value(name, getattr(info, name), bases) for name, label in
            TCB_VARIABLES}


def _inputs(items: list[Explained], bases: dict[Side, Bases]) -> list[dict[str, object]]:
    return [
        {
            "side": e.side.value,
            "inferred": e.inferred,
            "decisions": [
                {
                    "rule": d.rule.rule_id,
                    "citation": d.rule.citation,
                    "url": d.rule.url,
                    "summary": d.rule.summary,
                    "line": format_decision(d, bases[e.side]),
                }
                for d in e.decisions
            ],
            "before": _tcb(e.before, bases[e.side]),
            "after": _tcb(e.after, bases[e.side]),
        }
        for e in items
    ]


def _window_scales(conv: TcpConversation) -> dict[Side, int]:
    """Each side's window shift, if both SYNs carried the option (RFC 7323 2.2)."""
    shifts: dict[Side, int | None] = {}
    for p in conv.segments:
        side = conv.side(p)
        if p.segment.flags & TcpFlags.SYN and side not in shifts:
            shifts[side] = p.segment.options.window_scale
    if any(shifts.get(side) is None for side in Side):
        return {side: 0 for side in Side}
    return {side: min(shifts[side] or 0, 14) for side in Side}


def connection_data(conv: TcpConversation, delivery: Delivery, title: str) -> dict[str, object]:
    """Everything the page shows about one connection, as JSON-ready values."""
    states = replay(conv, delivery)
    bases = bases_for(conv)
    isn = {side: conv.isn(side) for side in Side}
    n = len(conv.segments)
    by_key: dict[tuple[Anchor, int], list[Explained]] = {}
    for e in states.explained:
        by_key.setdefault((e.anchor, e.index), []).append(e)
    # each side's TCB after each step (the last input at or before that segment)
    latest: dict[Side, TcbInfo | None] = {side: None for side in Side}
    step_of = {Anchor.BEFORE: -1, Anchor.AFTER: n}
    ordered = sorted(states.explained, key=lambda e: step_of.get(e.anchor, e.index))
    scales = _window_scales(conv)
    advertised: dict[Side, int | None] = {side: None for side in Side}
    steps = []
    k = 0
    for i, p in enumerate(conv.segments):
        while k < len(ordered) and step_of.get(ordered[k].anchor, ordered[k].index) <= i:
            latest[ordered[k].side] = ordered[k].after
            k += 1
        side = conv.side(p)
        shift = 0 if p.segment.flags & TcpFlags.SYN else scales[side]
        advertised[side] = p.segment.window << shift
        steps.append({
            "number": p.number,
            "time": round(p.time - conv.segments[0].time, 6),
            "from": side.value,
            "to": side.other.value,
            "label": segment_label(p.segment, isn[side], isn[side.other]),
            "lost": i in delivery.lost,
            "dropped": i in delivery.recorded_lost,
            "fault": None if p.fault is None else p.fault.value,  # as the fault link says
            "retransmitted": i in delivery.retransmitted,
            "sent": _inputs(by_key.get((Anchor.SENT, i), []), bases),
            "arrived": _inputs(by_key.get((Anchor.ARRIVED, i), []), bases),
            "tcb": {s.value: _window_state(latest[s], advertised[s]) for s in Side},
        })
    paths = {side: [m.state for m in states.marks if m.side is side] for side in Side}
    return {
        "title": title,
        "client": str(conv.client),
        "server": str(conv.server),
        "opened": _inputs(by_key.get((Anchor.BEFORE, -1), []), bases),
        "after": _inputs(by_key.get((Anchor.AFTER, -1), []), bases),
        "steps": steps,
        "notes": states.notes,
        "paths": {side.value: [s.value for s in states] for side, states in paths.items()},
        "figure5": figure5_svg(paths),
    }


def _window_state(info: TcbInfo | None, advertised: int | None) -> dict[str, object] | None:
    if info is None:
        return None
    return {
        "state": info.state.value,
        "in_flight": (info.snd_nxt - info.snd_una) & 0xFFFFFFFF,
        "snd_wnd": info.snd_wnd,
        "cwnd": info.cwnd,
        "advertised": advertised,
    }


def _dropped_segments(
    dropped: Sequence[tuple[float, bytes]],
) -> list[CapturedSegment]:
    """The fault link's records of packets it dropped, as captured segments (number 0)
    marked dropped, as a pcapng capture's comment marks one."""
    out = []
    for time, packet in dropped:
        try:
            ip = parse_ip(packet)
            if ip.protocol != IPPROTO_TCP:
                continue
            seg = TcpSegment.parse(ip.payload, ip.src, ip.dst)
        except WireError:
            continue
        options = ip.payload[20 : (ip.payload[12] >> 4) * 4]
        out.append(CapturedSegment(0, time, Endpoint(ip.src, seg.src_port),
                                   Endpoint(ip.dst, seg.dst_port), seg, options, Fault.DROPPED))
    return out


def render_view(
    pcap_path: str | Path,
    out_path: str | Path,
    connection: int | None = None,
    dropped: Sequence[tuple[float, bytes]] = (),
) -> list[dict[str, object]]:
    """Write the page for one connection (0-based, by first SYN) or all; return its data.

    The losses a pcapng capture's comments record are drawn as such (replay.py's
    classify). ``dropped`` is the hook for a fault link's records kept elsewhere: (time,
    IP packet) for each packet it dropped; each joins its connection in time order, as
    a recorded loss. Where a connection has recorded losses they are its losses, whatever
    the capture implies. Raises WireError for an unreadable capture, LookupError if there
    is no such connection.
    """
    capture = read_capture(pcap_path)
    extra = _dropped_segments(dropped)
    merged = sorted([*capture.segments, *extra], key=lambda p: p.time)
    conversations = find_connections(merged)
    data = []
    ladders = []
    for i in chosen(pcap_path, conversations, connection):
        conv = conversations[i]
        delivery = classify(conv)
        title = f"connection {i} of {len(conversations)}: {conv.client} > {conv.server}"
        data.append(connection_data(conv, delivery, title))
        subtitle = f"{Path(pcap_path).name}: {title}, {len(conv.segments)} segments"
        svg = ladder_svg(conv, delivery, replay(conv, delivery), subtitle)
        ladders.append(svg.split("?>", 1)[1].strip())
    page = _page(Path(pcap_path).name, data, ladders)
    Path(out_path).write_text(page, encoding="utf-8")
    return data


def _last(connection: dict[str, object]) -> int:
    steps = connection["steps"]
    assert isinstance(steps, list)
    return len(steps) - 1


def _page(name: str, data: list[dict[str, object]], ladders: list[str]) -> str:
    blob = json.dumps(data).replace("</", "<\\/")  # never ends the script element early
    sections = "\n".join(
        f'<section class="connection" data-connection="{i}">'
        f'<h2>{html.escape(str(d["title"]))}</h2>'
        f'<div class="row"><div class="ladder">{svg}</div>'
        f'<aside class="panel"><div class="stepper">'
        f'<button class="prev" type="button">&larr; prev</button>'
        f'<input class="step" type="range" min="0" max="{_last(d)}" value="0">'
        f'<button class="next" type="button">next &rarr;</button>'
        f'<span class="where"></span></div>'
        f'<div class="bars"></div><div class="detail"></div>'
        f'<div class="fig5">{d["figure5"]}</div></aside></div></section>'
        for i, (d, svg) in enumerate(zip(data, ladders, strict=True))
    )
    return _TEMPLATE.replace("%CSP%", _CSP).replace("%TITLE%", html.escape(name)).replace(
        "%SECTIONS%", sections).replace("%DATA%", blob)


# Nothing but the page's own inline style and script: the browser fetches nothing.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="%CSP%">
<title>userstack view: %TITLE%</title>
<style>
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 16px; color: #1d2b4f; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.row { display: flex; gap: 16px; align-items: flex-start; }
.ladder { flex: 0 0 auto; border: 1px solid #dde; }
.panel { flex: 1 1 auto; min-width: 420px; position: sticky; top: 8px; font-size: 13px; }
.ladder g.segment { cursor: pointer; }
.ladder g.segment:hover line { stroke-width: 3.5; }
.ladder g.segment.selected line { stroke: #e67e22 !important; stroke-width: 4; }
.ladder g.segment.selected text { fill: #e67e22; font-weight: bold; }
.stepper { display: flex; gap: 8px; align-items: center; margin-bottom: 8px; }
.stepper input { flex: 1 1 auto; }
.detail h3 { font-size: 14px; margin: 10px 0 4px; }
.detail .seg { font-family: 'DejaVu Sans Mono', monospace; background: #f4f6fb; padding: 4px; }
.decision { border-left: 4px solid #2e6fb0; padding: 2px 8px; margin: 6px 0; }
.decision.server { border-color: #c06c1a; }
.decision .rule { font-family: 'DejaVu Sans Mono', monospace; font-weight: bold; }
.decision .vars { font-family: 'DejaVu Sans Mono', monospace; color: #444; }
.inferred { color: #8a5a00; font-style: italic; margin: 4px 0; }
.lostnote { color: #c0392b; font-weight: bold; }
table.tcb { border-collapse: collapse; font-family: 'DejaVu Sans Mono', monospace; }
table.tcb td, table.tcb th { border: 1px solid #ccd; padding: 1px 6px; text-align: right; }
table.tcb td.changed { background: #fff0c0; font-weight: bold; }
.bars .bar { display: flex; align-items: center; gap: 6px; margin: 3px 0; font-size: 12px; }
.bars .bar .name { width: 170px; }
.bars .track { position: relative; height: 14px; width: 260px; background: #eef;
  border: 1px solid #99a; }
.bars .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #2e6fb0;
  transition: width 0.3s; }
.bars .fill.server { background: #c06c1a; }
.bars .mark { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #000;
  transition: left 0.3s; }
svg.figure5 { max-width: 100%; height: auto; }
svg.figure5 .state rect { fill: #fff; stroke: #888; stroke-width: 1.2; }
svg.figure5 .state text { font-size: 12px; text-anchor: middle; font-family: 'DejaVu Sans Mono',
  monospace; }
svg.figure5 .state.client rect { fill: #d7e6f7; stroke: #2e6fb0; stroke-width: 2; }
svg.figure5 .state.server rect { fill: #fae3cc; stroke: #c06c1a; stroke-width: 2; }
svg.figure5 .state.client.server rect { fill: #eadff2; stroke: #6b3fa0; }
svg.figure5 .state.now-client rect { stroke: #2e6fb0; stroke-width: 5; }
svg.figure5 .state.now-server rect { stroke: #c06c1a; stroke-width: 5; stroke-dasharray: 6 3; }
svg.figure5 .edge line { stroke: #bbb; stroke-width: 1; }
svg.figure5 .edge text { font-size: 9px; fill: #999; text-anchor: middle; }
svg.figure5 .edge.client line { stroke: #2e6fb0; stroke-width: 2.2; }
svg.figure5 .edge.server line { stroke: #c06c1a; stroke-width: 2.2; }
svg.figure5 .edge.client text, svg.figure5 .edge.server text { fill: #333; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 8px; }
</style></head><body>
<h1>userstack view: %TITLE%</h1>
<p>Each segment is replayed through userstack's RFC 9293 core. Click a segment, or step with
the control: the panel shows the rules the receiving endpoint applied, its TCB before and
after, and what the replay had to infer. Sequence numbers are relative to the ISNs.
<span class="legend"><span style="background:#d7e6f7">client</span>
<span style="background:#fae3cc">server</span></span></p>
%SECTIONS%
<script type="application/json" id="data">%DATA%</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function inputs(list, into) {
  for (const input of list) {
    if (input.inferred) into.appendChild(el("div", "inferred",
      input.side + ": inferred: " + input.inferred));
    for (const d of input.decisions) {
      const box = el("div", "decision " + input.side);
      const head = el("div");
      head.appendChild(el("span", "rule", d.rule));
      head.appendChild(document.createTextNode("  "));
      const a = el("a", "rfc", d.citation);
      a.href = d.url; a.target = "_blank"; a.rel = "noopener";
      head.appendChild(a);
      box.appendChild(head);
      box.appendChild(el("div", "summary", d.summary));
      const vars = d.line.split("  ").slice(2).join("  ");
      if (vars) box.appendChild(el("div", "vars", vars));
      into.appendChild(box);
    }
  }
}
function tcbTable(list, into) {
  const withTcb = list.filter(x => x.after);
  if (!withTcb.length) return;
  const before = withTcb[0].before, after = withTcb[withTcb.length - 1].after;
  const t = el("table", "tcb");
  const head = el("tr");
  for (const h of ["", "before", "after"]) head.appendChild(el("th", "", h));
  t.appendChild(head);
  for (const k of Object.keys(after)) {
    const tr = el("tr");
    tr.appendChild(el("th", "", k));
    const b = before ? before[k] : "-";
    tr.appendChild(el("td", "", b));
    tr.appendChild(el("td", b !== after[k] ? "changed" : "", after[k]));
    t.appendChild(tr);
  }
  into.appendChild(el("h3", "", withTcb[0].side + "'s TCB"));
  into.appendChild(t);
}
function bars(step, into, scale) {
  into.textContent = "";
  for (const side of ["client", "server"]) {
    const w = step.tcb[side];
    if (!w) continue;
    const rows = [
      [side + " " + w.state + ": in flight / SND.WND", w.in_flight, w.snd_wnd, w.cwnd],
      [side + ": window advertised", w.advertised || 0, null, null],
    ];
    for (const [name, value, limit, cwnd] of rows) {
      const row = el("div", "bar");
      row.appendChild(el("span", "name", name));
      const track = el("span", "track");
      const fill = el("span", "fill " + side);
      fill.style.width = Math.min(100, 100 * value / scale) + "%";
      track.appendChild(fill);
      for (const m of [limit, cwnd]) {
        if (m === null) continue;
        const mark = el("span", "mark");
        mark.style.left = Math.min(100, 100 * m / scale) + "%";
        track.appendChild(mark);
      }
      row.appendChild(track);
      row.appendChild(el("span", "", value + (limit === null ? "" : " / " + limit +
        ", cwnd " + cwnd)));
      into.appendChild(row);
    }
  }
}
document.querySelectorAll("section.connection").forEach(section => {
  const conn = DATA[Number(section.dataset.connection)];
  const detail = section.querySelector(".detail");
  const range = section.querySelector("input.step");
  const where = section.querySelector(".where");
  const barsBox = section.querySelector(".bars");
  const fig = section.querySelector("svg.figure5");
  const arrows = section.querySelectorAll(".ladder g.segment");
  let scale = 1;
  for (const s of conn.steps) for (const side of ["client", "server"]) {
    const w = s.tcb[side];
    if (w) scale = Math.max(scale, w.in_flight, w.snd_wnd, w.advertised || 0);
  }
  function select(i) {
    const step = conn.steps[i];
    range.value = i;
    where.textContent = "segment " + (i + 1) + " of " + conn.steps.length;
    arrows.forEach(a => a.classList.toggle("selected", Number(a.dataset.index) === i));
    detail.textContent = "";
    detail.appendChild(el("h3", "", "#" + step.number + "  " + step.time.toFixed(6) + " s  " +
      step.from + " \\u2192 " + step.to));
    detail.appendChild(el("div", "seg", step.label));
    if (step.dropped) detail.appendChild(el("div", "lostnote", step.fault +
      " by the fault link (as the capture records): it never reached the " + step.to +
      "'s core"));
    else if (step.lost) detail.appendChild(el("div", "lostnote",
      "presumed lost: sent again later and no ACK covered it; never delivered in the replay"));
    if (step.retransmitted) detail.appendChild(el("div", "inferred",
      "a retransmission: its sequence space was sent before"));
    if (step.sent.length) {
      detail.appendChild(el("h3", "", "before it left, at the " + step.from));
      inputs(step.sent, detail);
    }
    detail.appendChild(el("h3", "", "as it arrived at the " + step.to));
    const box = el("div", "decisions");
    inputs(step.arrived, box);
    if (!step.arrived.length) box.appendChild(el("div", "inferred",
      "no rule: the replay did not deliver it"));
    detail.appendChild(box);
    tcbTable(step.arrived, detail);
    bars(step, barsBox, scale);
    fig.querySelectorAll(".state").forEach(g => g.classList.remove("now-client", "now-server"));
    for (const side of ["client", "server"]) {
      const w = step.tcb[side];
      if (!w) continue;
      const g = fig.querySelector('.state[data-state="' + w.state + '"]');
      if (g) g.classList.add("now-" + side);
    }
  }
  arrows.forEach(a => a.addEventListener("click", () => select(Number(a.dataset.index))));
  range.addEventListener("input", () => select(Number(range.value)));
  section.querySelector(".prev").addEventListener("click",
    () => select(Math.max(0, Number(range.value) - 1)));
  section.querySelector(".next").addEventListener("click",
    () => select(Math.min(conn.steps.length - 1, Number(range.value) + 1)));
  select(0);
});
</script></body></html>
"""


def add_view(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `view` with a CLI's subcommands (cli.SUBCOMMANDS' shape)."""
    p = subparsers.add_parser(
        "view",
        help="write one self-contained HTML page explaining a captured TCP connection",
        description="Write an offline HTML page (no server, no network) for a pcap file: "
        "the ladder diagram, each segment's RFC rules, the TCB, RFC 9293 Figure 5.",
    )
    add_capture_arguments(p)
    p.add_argument("-o", "--output", type=Path,
                   help="HTML file to write (default: the capture's name with .html)")
    p.set_defaults(run=run_view)


def run_view(args: argparse.Namespace) -> int:
    """The `view` subcommand, given parsed arguments; returns the exit status."""
    out = args.output or args.capture.with_suffix(".html")
    try:
        data = render_view(args.capture, out, args.connection)
    except (OSError, WireError, LookupError) as e:
        print(f"userstack view: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {len(data)} connection(s)")
    return 0
