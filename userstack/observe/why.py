"""`userstack explain`: every segment of a capture, and why each endpoint did what it did.

A capture is replayed through userstack's own core, as `ladder` does (replay.py), with an
Explainer (tcp/rules.py) on each endpoint. Each segment prints as tcpdump prints it, then
one indented line per rule the *receiving* endpoint's core applied to it, then the TCB
variables it changed:

    00:00:00.000213 IP 10.0.0.2.80 > 10.0.0.1.36374: Flags [S.], seq 3301, ack 1, ...
        client  syn_sent.established  RFC 9293 3.10.7.3  SEG.ACK=1 ISS=0
                  SYN-SENT, fourth: a SYN that acknowledges ours: ESTABLISHED, ACK it
        client  changed: state SYN-SENT -> ESTABLISHED, SND.UNA 0 -> 1, RCV.NXT - -> 1

The user calls a sender must have made before a segment left (SEND, CLOSE, ABORT) print
above the segment, marked as inferred; so does everything else the replay had to assume
(see replay.py): a capture taken at one end cannot see what the other end saw.

Sequence numbers in the decision and TCB lines are relative to the ISNs, as the ladder
numbers them: what a side sends (SND.*, SEG.ACK of what it receives, ISS) from its own
ISN, what it receives (RCV.*, SEG.SEQ, IRS) from its peer's.

The formatting functions here are shared with the live `serve --trace --why` (trace.py's
Tracer) and the viewer (view.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..tcp.rules import TIMER_RULES, Decision, Explainer, variable_name
from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.errors import WireError
from ..wire.seq import SeqNum
from .replay import (
    TCB_VARIABLES,
    Anchor,
    Delivery,
    Explained,
    Replay,
    Side,
    TcpConversation,
    classify,
    find_connections,
    read_capture,
    replay,
    tcb_changes,
)
from .trace import Conversations, format_clock, format_segment

_MASK = 0xFFFFFFFF
_FROM_OWN_ISN = frozenset({"snd_una", "snd_nxt", "snd_wl2", "snd_up", "seg_ack", "iss", "recover"})
_FROM_PEER_ISN = frozenset({"rcv_nxt", "rcv_up", "seg_seq", "snd_wl1", "irs"})
_NAMES = dict(TCB_VARIABLES)
_INDENT = "    "
_DURATIONS = frozenset({"srtt", "rto", "delayed_ack", "sample", "idle", "reo_wnd"})


@dataclass(frozen=True, slots=True)
class Bases:
    """The ISNs sequence numbers are shown relative to, for one endpoint (None: absolute)."""

    own: int | None  # ISS
    peer: int | None  # IRS


ABSOLUTE = Bases(None, None)


def format_value(name: str, value: object, bases: Bases = ABSOLUTE) -> str:
    """One variable's value: sequence numbers relative to the right ISN, seconds in ms."""
    if value is None:
        return "-"
    if isinstance(value, State):
        return value.value
    if isinstance(value, SeqNum):
        value = value.value
    if isinstance(value, int) and not isinstance(value, bool):
        base = (
            bases.own if name in _FROM_OWN_ISN else bases.peer if name in _FROM_PEER_ISN else None
        )
        return str(value if base is None else (value - base) & _MASK)
    if isinstance(value, float):
        return f"{value * 1000:.6g} ms" if name in _DURATIONS else f"{value:g}"
    return str(value)


def format_decision(decision: Decision, bases: Bases = ABSOLUTE) -> str:
    """`acceptability.not_acceptable  RFC 9293 3.10.7.4  SEG.SEQ=1001 RCV.NXT=2001` and,
    if the rule changed something itself, `; RTO 1000 ms -> 2000 ms`."""
    rule = decision.rule
    parts = [rule.rule_id, rule.citation]
    compared = " ".join(
        f"{variable_name(k)}={format_value(k, v, bases)}" for k, v in decision.compared
    )
    if compared:
        parts.append(compared)
    line = "  ".join(parts)
    if decision.changed:
        line += "; " + ", ".join(
            f"{variable_name(k)} {format_value(k, old, bases)} -> {format_value(k, new, bases)}"
            for k, old, new in decision.changed
        )
    return line


def format_changes(changes: list[tuple[str, object, object]], bases: Bases = ABSOLUTE) -> str:
    """`state SYN-SENT -> ESTABLISHED, SND.UNA 0 -> 1`."""
    return ", ".join(
        f"{_NAMES.get(k, k)} {format_value(k, old, bases)} -> {format_value(k, new, bases)}"
        for k, old, new in changes
    )


def bases_for(conv: TcpConversation) -> dict[Side, Bases]:
    isn = {side: conv.isn(side) for side in Side}

    def value(n: SeqNum | None) -> int | None:
        return None if n is None else n.value

    return {side: Bases(value(isn[side]), value(isn[side.other])) for side in Side}


def explained_lines(item: Explained, bases: Mapping[Side, Bases]) -> Iterator[str]:
    """The indented lines of one input: its decisions, what it changed, what was inferred."""
    who = f"{item.side.value:<6}"
    b = bases[item.side]
    if item.inferred:
        yield f"{_INDENT}{who}  (inferred: {item.inferred})"
    for decision in item.decisions:
        yield f"{_INDENT}{who}  {format_decision(decision, b)}"
        yield f"{_INDENT}{' ' * len(who)}    {decision.rule.summary}"
    changes = tcb_changes(item.before, item.after)
    if item.before is None:  # the OPEN: everything is new; the state says enough
        changes = [c for c in changes if c[0] == "state"]
    if changes:
        yield f"{_INDENT}{who}  changed: {format_changes(changes, b)}"


@dataclass(frozen=True, slots=True)
class Explanation:
    conversation: TcpConversation
    delivery: Delivery
    replay: Replay
    lines: list[str]

    def undecided(self) -> list[int]:
        """Indexes of the segments that no endpoint's core said anything about."""
        decided = {
            e.index for e in self.replay.explained if e.anchor is Anchor.ARRIVED and e.decisions
        }
        return [i for i in range(len(self.conversation.segments)) if i not in decided]


def explain_conversation(conv: TcpConversation, header: str = "") -> Explanation:
    """Replay one conversation and tell each segment with its decisions."""
    delivery = classify(conv)
    states = replay(conv, delivery)
    bases = bases_for(conv)
    by_segment: dict[tuple[Anchor, int], list[Explained]] = {}
    for item in states.explained:
        by_segment.setdefault((item.anchor, item.index), []).append(item)
    t0 = conv.segments[0].time if conv.segments else 0.0
    conversations = Conversations()
    lines = [header] if header else []
    lines.append(
        f"client {conv.client}, server {conv.server}; in the indented lines sequence numbers "
        "are relative to the ISNs, and RCV.WND is the replay's (its buffers never fill)"
    )

    def inputs(anchor: Anchor, index: int) -> Iterator[str]:
        for item in by_segment.get((anchor, index), []):
            yield from explained_lines(item, bases)

    lines += inputs(Anchor.BEFORE, -1)
    for i, p in enumerate(conv.segments):
        lines += inputs(Anchor.SENT, i)
        line = format_segment(p.src, p.dst, p.segment, p.options, conversations)
        lines.append(f"{format_clock(p.time - t0)} {line}")
        receiver = conv.side(p).other.value
        if i in delivery.lost:
            lines.append(f"{_INDENT}{receiver:<6}  (inferred: presumed lost: sent again "
                         "later and no ACK covered it, so the replay never delivers it)")
        elif i in delivery.retransmitted:
            lines.append(f"{_INDENT}{receiver:<6}  (inferred: a retransmission: its sequence "
                         "space was sent before)")
        lines += inputs(Anchor.ARRIVED, i)
    lines += inputs(Anchor.AFTER, -1)
    lines += [f"note: {note}" for note in states.notes]
    return Explanation(conv, delivery, states, lines)


def explain_capture(pcap_path: str | Path, connection: int | None = None) -> list[Explanation]:
    """Explain one connection of a capture (0-based, by first SYN), or all of them.

    Raises WireError for an unreadable capture, LookupError if there is no such connection.
    """
    conversations = find_connections(read_capture(pcap_path).segments)
    return [
        explain_conversation(
            conversations[i],
            f"=== connection {i} of {len(conversations)}: {conversations[i].client} > "
            f"{conversations[i].server}, {len(conversations[i].segments)} segments",
        )
        for i in chosen(pcap_path, conversations, connection)
    ]


def chosen(
    pcap_path: str | Path, conversations: list[TcpConversation], connection: int | None
) -> range | list[int]:
    """Connection ``connection`` (0-based, by first SYN), or all of them if None.

    Raises LookupError if there is no such connection.
    """
    if connection is None:
        return range(len(conversations))
    if not 0 <= connection < len(conversations):
        raise LookupError(
            f"{pcap_path}: no connection {connection}: found {len(conversations)} "
            "(a connection is counted from its SYN)"
        )
    return [connection]


def add_capture_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments `explain` and `view` share: the capture and --connection."""
    p.add_argument("capture", type=Path, help="pcap file (raw IP, Ethernet or Linux cooked)")
    p.add_argument("--connection", type=int, metavar="N",
                   help="only connection N: 0-based, in order of first SYN (default: all)")


class LiveWhy:
    """`serve --trace --why`: each decision of a live connection as a line under the
    trace line of the packet (or the user call) that led to it; a timer's decision under
    a line of its own, `TIME LOCAL REMOTE timer`, stamped by `stamp` (the tracer's clock).

    Sequence numbers are relative to the connection's ISNs, learnt from its own decisions
    (the OPEN names ISS, the peer's SYN names IRS), as tcpdump's are after the handshake.
    """

    def __init__(self, out: TextIO, stamp: Callable[[], str] | None = None) -> None:
        self.out = out
        self.stamp = stamp

    def __call__(self, local: Endpoint, remote: Endpoint) -> Explainer:
        """The recorder for one new connection (Stack.explain's shape)."""
        who = f"{local} {remote}"
        bases = [Bases(None, None)]

        def decided(decision: Decision) -> None:
            names = dict(decision.compared)
            base = bases[0]
            own, peer = names.get("iss", base.own), names.get("irs", base.peer)
            bases[0] = base = Bases(_int(own), _int(peer))
            if decision.rule in TIMER_RULES and self.stamp is not None:
                print(f"{self.stamp()} {who} timer", file=self.out)
            print(f"{_INDENT}{who}  {format_decision(decision, base)}\n"
                  f"{_INDENT}{' ' * len(who)}    {decision.rule.summary}", file=self.out,
                  flush=True)

        return Explainer(decided)


def _int(n: object) -> int | None:
    return n.value if isinstance(n, SeqNum) else n if isinstance(n, int) else None


def add_explain(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `explain` with a CLI's subcommands (cli.SUBCOMMANDS' shape)."""
    p = subparsers.add_parser(
        "explain",
        help="tell why each endpoint of a captured TCP connection did what it did",
        description="Replay a pcap file through userstack's core and print each segment "
        "(tcpdump's format) with the RFC rules the receiving endpoint applied to it and "
        "the TCB variables it changed.",
    )
    add_capture_arguments(p)
    p.set_defaults(run=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    """The `explain` subcommand, given parsed arguments; returns the exit status."""
    try:
        explanations = explain_capture(args.capture, args.connection)
    except (OSError, WireError, LookupError) as e:
        print(f"userstack explain: {e}", file=sys.stderr)
        return 1
    if not explanations:
        print(f"{args.capture}: no TCP connections (a connection is counted from its SYN)")
    try:
        for explanation in explanations:
            print("\n".join(explanation.lines))
    except BrokenPipeError:  # `userstack explain X | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    return 0
