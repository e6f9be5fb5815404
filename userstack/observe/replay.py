"""What a recorded TCP connection did: its segments, which were resent or lost, and the
RFC 9293 state each endpoint was in, derived by replaying the capture through userstack's
own sans-I/O core.

This is the analysis half of ``userstack ladder`` (the drawing is in ladder.py).

Finding connections
    A connection starts at a SYN without ACK ("the client" sent it) and collects every later
    segment on the same 4-tuple, until another SYN with a different ISN reuses the tuple.
    Segments of a tuple before its first SYN (a capture started mid-stream) are left out:
    without the ISNs nothing can be numbered relative to them or replayed.

Retransmissions and losses (inferred, not observed)
    A segment that occupies sequence space (data, SYN or FIN) starting below the highest
    sequence number its sender had already used is a *retransmission*. An earlier
    transmission of that space which no captured ACK covered before it was sent again is
    presumed *lost*. A capture only shows what crossed the capture point, so:
    - taken at the receiver, a lost segment is simply absent: only the retransmission shows;
    - a spurious retransmission (the data arrived but its ACK was lost or late) looks like a
      loss of the original, unless the receiver's captured ACKs answer every copy: a copy
      that arrives draws an ACK at once (a duplicate is ACKed at once, RFC 9293 3.10.7.4
      and RFC 5681 4.2), so as many ACKs covering the space as copies of it, before the
      sender moves on to new space, say none was lost (`_answered`: a FIN resent by a
      tail loss probe because our ACK was late, say);
    - the same packet captured twice (e.g. ``tcpdump -i any``) looks like a retransmission.
    A capture from userstack's own fault link (pcapng, ``userstack serve --pcap`` with
    ``--loss``...) says what happened instead of leaving it to inference: a record whose
    comment says *dropped* or *corrupted* (see userstack/wire/pcap.py) was lost, observed
    and not presumed, and is never delivered in the replay; one that says *duplicated* is
    the fault link's extra copy, not a retransmission. Where a connection has such records
    they are its losses, and nothing more is presumed: the fault link was the only place
    anything could be lost, and a spurious retransmission is no longer mistaken for one.

States (replayed, not observed)
    Each endpoint gets a ``Connection``: the client ``open_active`` with the ISN of its SYN,
    the server ``open_passive`` with the ISN of its SYN-ACK (``open_active`` if it answered
    with a bare SYN: a simultaneous open). Each is fed, with ``now`` = capture time, the
    segments the *other* side sent, except those presumed lost, in capture order, but
    never before the endpoint's own next segment acknowledges them if it does not (see
    _deliver: a capture taken at one end sees the other end's segments late).
    What the user did is inferred from what that endpoint itself sent: new data means it
    called SEND just before, its first FIN means CLOSE, an RST the core did not send in
    answer to an arriving segment means ABORT. Received data is read at once so the
    receive window never closes. CLOSE is replayed as a half-close (shutdown(SHUT_WR)):
    whether the application would have gone on reading is unknown until data arrives
    after the FIN; if the endpoint then answers with an RST (a full close, RFC 1122
    4.2.2.13, as Linux does), that RST is replayed as ABORT.
    Timers are set far out and never fired, except TIME-WAIT's 2*MSL at the very end.
    Where the peer acknowledges data the replayed sender has not sent yet (its congestion
    window starts and grows differently from, say, Linux's), the replay first acknowledges
    what it has sent, step by step, until it catches up: a cumulative ACK implies every
    smaller one. What the replay cannot know:
    - when the application really called SEND/CLOSE (only that it had by the time the
      segment left), nor anything the host did that left no segment in the capture;
    - the peer's congestion control, timers and options other than those in the SYNs: a
      Linux sender may have more in flight than the replayed core would, and then the
      replay lags the capture;
    - anything about segments that never crossed the capture point.
    Where the replay and the capture disagree the capture wins (every captured segment is
    still drawn) and the disagreement is reported in ``Replay.notes``.

Decisions (``userstack explain`` and ``view``)
    Each replayed Connection is given an Explainer (tcp/rules.py). Every input the replay
    makes (the OPEN, the user calls inferred before a segment, a segment's arrival, a
    catch-up ACK, 2*MSL at the end) becomes one `Explained`: the rules the core named and
    its TCB (``Connection.info``) before and after, with what the replay had to infer to
    make that input, so the explanation never passes a guess off as an observation.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TypedDict

from ..tcp.config import TcpConfig
from ..tcp.connection import Connection, reset_for
from ..tcp.events import StateChanged
from ..tcp.info import TcbInfo
from ..tcp.rules import Decision, Explainer
from ..tcp.state import State
from ..tcp.timestamps import TICKS_PER_SECOND
from ..wire.addr import Endpoint
from ..wire.checksum import internet_checksum, pseudo_header_sum
from ..wire.errors import WireError
from ..wire.ipv4 import IPPROTO_TCP
from ..wire.packet import IPPacket, parse_ip
from ..wire.pcap import LINKTYPE_RAW
from ..wire.pcapng import LINKTYPE_IPV4, Fault, fault_in, open_capture
from ..wire.seq import SeqNum
from ..wire.tcp import TcpFlags, TcpSegment


class Side(Enum):
    CLIENT = "client"  # sent the first SYN
    SERVER = "server"

    @property
    def other(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


@dataclass(frozen=True, slots=True)
class CapturedSegment:
    number: int  # 1-based position in the capture file, as tcpdump -# and Wireshark count
    time: float  # capture timestamp, seconds
    src: Endpoint
    dst: Endpoint
    segment: TcpSegment
    options: bytes = b""  # the options area as captured (tcpdump prints it in wire order)
    fault: Fault | None = None  # what the fault link did to it, if the capture says (pcapng)


@dataclass(slots=True)
class Capture:
    segments: list[CapturedSegment]
    skipped: int  # packets that were not IPv4/TCP or did not parse
    unchecked: int  # TCP checksums not filled in yet (offload): taken as they are


@dataclass(slots=True)
class TcpConversation:
    """One connection found in a capture: every captured segment on its 4-tuple."""

    client: Endpoint
    server: Endpoint
    segments: list[CapturedSegment] = field(default_factory=list)

    def side(self, packet: CapturedSegment) -> Side:
        return Side.CLIENT if packet.src == self.client else Side.SERVER

    def isn(self, side: Side) -> SeqNum | None:
        """The initial sequence number of ``side``: the seq of the first SYN it sent."""
        for p in self.segments:
            if self.side(p) is side and p.segment.flags & TcpFlags.SYN:
                return p.segment.seq
        return None


def read_capture(path: str | Path) -> Capture:
    """Every TCP packet (IPv4 or IPv6) of a pcap file, parsed; anything else is counted
    and skipped.

    Raises WireError if the file is not a pcap file or its link type is not one of
    LINKTYPE_RAW (what userstack and tcpdump on a TUN write), Ethernet, or Linux
    "cooked" (tcpdump -i any).
    """
    segments: list[CapturedSegment] = []
    skipped = unchecked = 0
    with open(path, "rb") as f:
        reader = open_capture(f)
        unframe = _UNFRAME.get(reader.linktype)
        if unframe is None:
            raise WireError(f"pcap link type {reader.linktype} is not supported")
        for number, (time, frame, comment) in enumerate(reader.records(), start=1):
            fault = fault_in(comment)
            data = unframe(frame)
            try:
                if data is None:
                    raise WireError("not IP")
                ip = parse_ip(data)
                if ip.protocol != IPPROTO_TCP:
                    raise WireError("not TCP")
                try:
                    seg = TcpSegment.parse(ip.payload, ip.src, ip.dst)
                except WireError:
                    seg = TcpSegment.parse(_checksummed(ip), ip.src, ip.dst)
                    if fault is not Fault.CORRUPTED:  # its checksum is bad on purpose
                        unchecked += 1
            except WireError:
                skipped += 1
                continue
            src, dst = Endpoint(ip.src, seg.src_port), Endpoint(ip.dst, seg.dst_port)
            options = ip.payload[20 : (ip.payload[12] >> 4) * 4]
            segments.append(CapturedSegment(number, time, src, dst, seg, options, fault))
    return Capture(segments, skipped, unchecked)


def _checksummed(ip: IPPacket) -> bytes:
    """The TCP segment with its checksum filled in.

    A capture taken on the sending host sees segments before the NIC fills in the
    checksum (checksum offload; always so on Linux loopback), so a bad checksum there
    is not damage. tcpdump and Wireshark do not hold it against the packet either.
    """
    tcp = bytearray(ip.payload)
    if len(tcp) < 20:
        raise WireError("TCP segment too short for a header")
    tcp[16:18] = b"\0\0"
    partial = pseudo_header_sum(ip.src, ip.dst, IPPROTO_TCP, len(tcp))
    tcp[16:18] = internet_checksum(tcp, partial).to_bytes(2, "big")
    return bytes(tcp)


_ETHERTYPE_IPV4 = b"\x08\x00"
_ETHERTYPE_IPV6 = b"\x86\xdd"
_ETHERTYPE_IP = (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6)
_ETHERTYPE_VLAN = b"\x81\x00"


def _trimmed(packet: bytes) -> bytes | None:
    """An IP packet cut to its length (Ethernet pads short frames): IPv4's total length,
    or IPv6's 40-byte header plus its payload length."""
    if len(packet) < 8:
        return None
    version = packet[0] >> 4
    if version == 4:
        return packet[: int.from_bytes(packet[2:4], "big")]
    if version == 6:
        return packet[: 40 + int.from_bytes(packet[4:6], "big")]
    return None


def _ethernet(frame: bytes) -> bytes | None:
    ethertype, offset = frame[12:14], 14
    if ethertype == _ETHERTYPE_VLAN:  # one 802.1Q tag
        ethertype, offset = frame[16:18], 18
    return _trimmed(frame[offset:]) if ethertype in _ETHERTYPE_IP else None


def _linux_sll(frame: bytes) -> bytes | None:  # 16-byte header, protocol last
    return _trimmed(frame[16:]) if frame[14:16] in _ETHERTYPE_IP else None


def _linux_sll2(frame: bytes) -> bytes | None:  # 20-byte header, protocol first
    return _trimmed(frame[20:]) if frame[0:2] in _ETHERTYPE_IP else None


_UNFRAME: dict[int, Callable[[bytes], bytes | None]] = {
    LINKTYPE_RAW: bytes,  # what userstack writes, pcap and pcapng
    LINKTYPE_IPV4: bytes,  # userstack's older pcapng files
    229: bytes,  # LINKTYPE_IPV6
    1: _ethernet,  # LINKTYPE_ETHERNET
    113: _linux_sll,  # LINKTYPE_LINUX_SLL
    276: _linux_sll2,  # LINKTYPE_LINUX_SLL2
}


def add_capture_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """The arguments of a command that draws one connection of a capture (ladder, plot);
    `output` says what the default SVG file is called."""
    parser.add_argument("capture", type=Path, help="pcap file (raw IP, Ethernet or Linux cooked)")
    parser.add_argument("-o", "--output", type=Path,
                        help=f"SVG file to write (default: the capture's name with {output})")
    parser.add_argument("--connection", type=int, default=0, metavar="N",
                        help="which connection: 0-based, in order of first SYN (default 0)")


def find_connections(segments: Iterable[CapturedSegment]) -> list[TcpConversation]:
    """The TCP connections in a capture, in order of their first SYN."""
    found: list[TcpConversation] = []
    current: dict[frozenset[Endpoint], TcpConversation] = {}
    for p in segments:
        key = frozenset((p.src, p.dst))
        conv = current.get(key)
        flags = p.segment.flags
        opens = flags & TcpFlags.SYN and not flags & TcpFlags.ACK
        if opens and (conv is None or _reuses(conv, p)):
            conv = TcpConversation(client=p.src, server=p.dst)
            current[key] = conv
            found.append(conv)
        if conv is not None:
            conv.segments.append(p)
    return found


def _reuses(conv: TcpConversation, syn: CapturedSegment) -> bool:
    """A SYN from the same client with a new ISN: the 4-tuple's next incarnation."""
    return syn.src == conv.client and syn.segment.seq != conv.segments[0].segment.seq


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the capture says about each segment of a conversation (by index)."""

    retransmitted: frozenset[int]
    lost: frozenset[int]  # presumed lost, or as the capture records (recorded_lost)
    recorded_lost: frozenset[int] = frozenset()  # dropped or corrupted by the fault link
    duplicates: frozenset[int] = frozenset()  # the fault link's extra copies


def classify(conv: TcpConversation) -> Delivery:
    """Mark retransmissions and presumed losses (see the module docstring for the rules),
    and what a fault link's capture records as lost or duplicated."""
    retransmitted: set[int] = set()
    lost: set[int] = set()
    recorded_lost: set[int] = set()
    duplicates: set[int] = set()
    highest: dict[Side, SeqNum] = {}
    unacked: dict[Side, list[tuple[int, SeqNum, SeqNum]]] = {Side.CLIENT: [], Side.SERVER: []}
    for i, p in enumerate(conv.segments):
        side, seg = conv.side(p), p.segment
        if p.fault is Fault.DUPLICATED:
            duplicates.add(i)  # the same segment again, made by the link: nothing new
            continue
        if p.fault is not None:  # dropped or corrupted: it reached nobody
            recorded_lost.add(i)
        elif seg.flags & TcpFlags.ACK:  # cumulative: all of the other side's ending at or below
            peer = unacked[side.other]
            peer[:] = [t for t in peer if t[2] > seg.ack]
        if not seg.seg_len:
            continue
        start, end = seg.seq, seg.seq + seg.seg_len
        top = highest.get(side)
        if top is not None and start < top:
            retransmitted.add(i)
            mine = unacked[side]
            lost.update(j for j, s, e in mine if s < end and start < e)
            mine[:] = [t for t in mine if not (t[1] < end and start < t[2])]
        unacked[side].append((i, start, end))
        if top is None or end > top:
            highest[side] = end
    lost -= _answered(conv, lost)
    if recorded_lost or duplicates:  # a fault link's capture: it says what was lost
        lost = recorded_lost
    return Delivery(
        frozenset(retransmitted), frozenset(lost), frozenset(recorded_lost),
        frozenset(duplicates),
    )


def _answered(conv: TcpConversation, presumed: set[int]) -> set[int]:
    """The presumed losses the receiver answered anyway: transmission i, its exact copies
    after it (same SEG.SEQ, same SEG.LEN) up to the sender's next new sequence space, and
    at least as many segments of the receiver's in that stretch acknowledging all of it,
    each the same ACK (SEG.ACK and SEG.WND: a window update is not an answer); see the
    module docstring."""
    segments = conv.segments
    answered = set()
    for i in presumed:
        sender, seg = conv.side(segments[i]), segments[i].segment
        end = seg.seq + seg.seg_len
        copies = 0
        answers: list[tuple[SeqNum, int]] = []
        for p in segments[i:]:
            s = p.segment
            if conv.side(p) is sender:
                if s.seq == seg.seq and s.seg_len == seg.seg_len:
                    copies += 1
                elif s.seg_len:
                    break  # new space: what follows answers more than this
            elif s.flags & TcpFlags.ACK and s.ack >= end:
                answers.append((s.ack, s.window))
        if len(answers) >= copies and len(set(answers)) == 1:
            answered.add(i)
    return answered


class Anchor(Enum):
    """Where on its time line a state change belongs."""

    BEFORE = "before"  # before the first segment (the OPEN)
    SENT = "sent"  # as the endpoint sent segment ``index`` (a user call just before it)
    ARRIVED = "arrived"  # as segment ``index`` arrived at the endpoint
    AFTER = "after"  # after the last segment (TIME-WAIT's 2*MSL ran out)


@dataclass(frozen=True, slots=True)
class StateMark:
    side: Side
    state: State
    anchor: Anchor
    index: int  # into TcpConversation.segments; -1 for BEFORE / AFTER


@dataclass(frozen=True, slots=True)
class Explained:
    """One input the replay gave one endpoint, and what the core said about it."""

    side: Side  # the endpoint that was given the input
    anchor: Anchor  # ARRIVED: segment ``index`` arrived; SENT: user calls before it left
    index: int  # into TcpConversation.segments; -1 for BEFORE / AFTER
    decisions: tuple[Decision, ...]
    before: TcbInfo | None  # None: no TCB yet (before the OPEN)
    after: TcbInfo | None  # None: there is no TCB (a closed port)
    inferred: str | None = None  # what the replay had to assume to make this input


# The TCB variables an explanation shows changing, as the RFC names them. (RTO is left
# out: the replay sets its timers far out on purpose, REPLAY_CONFIG.)
TCB_VARIABLES = (
    ("state", "state"), ("snd_una", "SND.UNA"), ("snd_nxt", "SND.NXT"),
    ("snd_wnd", "SND.WND"), ("rcv_nxt", "RCV.NXT"), ("rcv_wnd", "RCV.WND"), ("mss", "MSS"),
    ("cwnd", "cwnd"), ("ssthresh", "ssthresh"), ("srtt", "SRTT"),
)


def tcb_changes(
    before: TcbInfo | None, after: TcbInfo | None
) -> list[tuple[str, object, object]]:
    """(field, old, new) for each of TCB_VARIABLES that differs; None before the OPEN
    (and after, where there is no TCB at all)."""
    if after is None:
        return []
    return [
        (name, None if before is None else getattr(before, name), getattr(after, name))
        for name, _ in TCB_VARIABLES
        if before is None or getattr(before, name) != getattr(after, name)
    ]


@dataclass(slots=True)
class Replay:
    marks: list[StateMark]
    notes: list[str]
    explained: list[Explained] = field(default_factory=list)


_CATCH_UP_STEPS = 10_000  # partial ACKs at most per captured ACK (each opens cwnd a little)

# Timers far enough out never to fire during a replay; the capture shows what really
# happened on timeouts. Buffers big enough never to limit what the capture shows.
_FAR = 1e9
REPLAY_CONFIG = TcpConfig(
    recv_buffer=1 << 30,
    send_buffer=1 << 30,
    rto_initial=_FAR,
    rto_min=_FAR,
    rto_max=_FAR,
    delayed_ack=0.0,
    nagle=False,
    persist_min=_FAR,
    keepalive=False,
)


class _Endpoint:
    """One side's replayed Connection and the state marks it produced."""

    def __init__(self, side: Side, out: Replay) -> None:
        self.side = side
        self.name = side.value
        self.out = out
        self.conn: Connection | None = None
        self.state: State | None = None
        self.sent_fin = False
        self.sent_to: SeqNum | None = None  # highest sequence number this side has sent
        self.lag_noted = False
        self.answered_with_rst = False  # the core just reset a segment that arrived
        self.why = Explainer()
        self.no_tcb = False  # the host had no TCB and no listener for this port
        self.held: set[int] = set()  # segments replayed later than capture order (_deliver)

    def start(self, conn: Connection, anchor: Anchor, index: int) -> None:
        self.conn = conn
        self._mark(conn.state, anchor, index)
        self._drain(anchor, index)
        self._explain(anchor, index, None, conn.info(0.0), "the OPEN is implied by its first "
                      "segment")

    def _explain(
        self, anchor: Anchor, index: int, before: TcbInfo | None, after: TcbInfo | None,
        inferred: str | None = None,
    ) -> None:
        """Record what the core decided on the input just made (if it decided or changed
        anything)."""
        decisions = tuple(self.why.take())
        if decisions or tcb_changes(before, after):
            self.out.explained.append(
                Explained(self.side, anchor, index, decisions, before, after, inferred)
            )

    def _mark(self, state: State, anchor: Anchor, index: int) -> None:
        if state is not self.state:
            self.state = state
            self.out.marks.append(StateMark(self.side, state, anchor, index))

    def _drain(self, anchor: Anchor, index: int) -> bool:
        """Record its state changes; True if it queued an RST."""
        assert self.conn is not None
        for ev in self.conn.take_events():
            if isinstance(ev, StateChanged):
                self._mark(ev.new, anchor, index)
        return any(s.flags & TcpFlags.RST for s in self.conn.take_outgoing())

    def _fail(self, p: CapturedSegment, what: str, e: Exception) -> None:
        self.out.notes.append(
            f"replay of the {self.name} stopped at packet #{p.number} ({what}): {e}"
        )
        self.conn = None

    def sending(self, index: int, p: CapturedSegment) -> None:
        """This side sent ``p``: replay the user calls that must have come before it."""
        if self.conn is None:
            return
        seg = p.segment
        automatic_rst, self.answered_with_rst = self.answered_with_rst, False
        new_data = seg.payload
        if self.sent_to is not None and seg.payload:
            already = self.sent_to - seg.seq  # bytes of this payload sent before
            new_data = seg.payload[max(already, 0) :]
        before = self.conn.info(p.time)
        try:
            if new_data:
                self.conn.send(new_data, p.time)
            if seg.flags & TcpFlags.FIN and not self.sent_fin:
                self.sent_fin = True
                self.conn.close(p.time, half=True)  # see "half-close" in the module docstring
            self._drain(Anchor.SENT, index)
            # an RST the core did not send in answer to what arrived is the user's ABORT
            aborted = seg.flags & TcpFlags.RST and not automatic_rst
            if aborted and self.conn.state is not State.CLOSED:
                self.conn.abort(p.time)
                self._drain(Anchor.SENT, index)
        except Exception as e:  # a diverged replay must never stop the drawing
            self._fail(p, "sending", e)
            return
        self._explain(Anchor.SENT, index, before, self.conn.info(p.time),
                      "the user call is inferred from what this segment carries")
        end = seg.seq + seg.seg_len
        if seg.seg_len and (self.sent_to is None or end > self.sent_to):
            self.sent_to = end

    def arriving(self, index: int, p: CapturedSegment) -> None:
        """The other side's segment ``p`` arrives here."""
        if self.conn is None:
            if self.no_tcb:  # the host answers for the port as RFC 9293 3.10.7.1 says
                self.answered_with_rst |= bool(reset_for(p.segment, self.why))
                self._explain(Anchor.ARRIVED, index, None, None,
                              "no listener: the host answers for the closed port")
            return
        seg = p.segment
        try:
            if seg.flags & TcpFlags.ACK and self.conn.state.synchronized:
                self._catch_up(seg, p.time, index)
            before = self.conn.info(p.time)
            self.conn.on_segment(seg, p.time)
            while self.conn.readable:
                self.conn.receive(self.conn.readable, p.time)
            self.answered_with_rst |= self._drain(Anchor.ARRIVED, index)
        except Exception as e:  # a diverged replay must never stop the drawing
            self._fail(p, "receiving", e)
            return
        self._explain(Anchor.ARRIVED, index, before, self.conn.info(p.time), (
            "capture order is not arrival order: replayed as arriving after the "
            f"{self.name}'s own later segment, which did not acknowledge it"
        ) if index in self.held else None)
        if self.lag_noted or not seg.flags & TcpFlags.ACK or self.sent_to is None:
            return
        if self._snd_nxt(p.time) < seg.ack <= self.sent_to:  # really sent, yet not replayed
            self.lag_noted = True
            self.out.notes.append(
                f"packet #{p.number} acknowledges data the replayed {self.name} had not sent "
                f"(it could not follow the real sender); later {self.name} states may be off"
            )

    def _snd_nxt(self, now: float) -> SeqNum:
        assert self.conn is not None
        return SeqNum(self.conn.info(now).snd_nxt)

    def _catch_up(self, seg: TcpSegment, now: float, index: int) -> None:
        """Let the replay send what the real sender had sent by the time ``seg`` acks it.

        The replayed sender's congestion window starts smaller than, say, Linux's (IW10)
        and grows differently, so it may not have sent yet what the peer acknowledges;
        RFC 9293 would then drop the ACK (SEG.ACK > SND.NXT). A cumulative ACK implies
        every smaller one, so acknowledge what the replay has sent, step by step, until it
        has sent as far as ``seg`` acknowledges (or stops making progress).
        """
        assert self.conn is not None
        for _ in range(_CATCH_UP_STEPS):
            nxt = self._snd_nxt(now)
            if seg.ack <= nxt or SeqNum(self.conn.info(now).snd_una) == nxt:
                return
            before = self.conn.info(now)
            self.conn.on_segment(
                TcpSegment(seg.src_port, seg.dst_port, seg.seq, nxt, TcpFlags.ACK, seg.window),
                now,
            )
            self._drain(Anchor.ARRIVED, index)
            self._explain(Anchor.ARRIVED, index, before, self.conn.info(now),
                          "a partial ACK the replay made up: the real sender had sent more "
                          "than the replayed one, and a cumulative ACK implies each smaller one")
            if self._snd_nxt(now) == nxt:
                return

    def finish(self) -> None:
        """If it ended in TIME-WAIT, let 2*MSL pass (RFC 9293 3.10.8) and show it CLOSED."""
        if self.conn is None or self.conn.state is not State.TIME_WAIT:
            return
        deadline = self.conn.next_deadline()
        if deadline is None:
            return
        before = self.conn.info(deadline)
        try:
            self.conn.on_timer(deadline)
            self._drain(Anchor.AFTER, -1)
        except Exception as e:  # a diverged replay must never stop the drawing
            self.out.notes.append(f"replay of the {self.name} failed at 2*MSL: {e}")
            return
        self._explain(Anchor.AFTER, -1, before, self.conn.info(deadline),
                      "2*MSL is assumed to have passed after the capture ends")


def replay(
    conv: TcpConversation, delivery: Delivery, config: TcpConfig = REPLAY_CONFIG
) -> Replay:
    """Derive each endpoint's RFC 9293 states by replaying ``conv`` (see the module docstring)."""
    out = Replay([], [])
    if not conv.segments:
        return out
    ends = {side: _Endpoint(side, out) for side in Side}
    first = conv.segments[0]
    client = ends[Side.CLIENT]
    client.start(
        Connection.open_active(
            conv.client, conv.server, iss=first.segment.seq, now=first.time,
            explain=client.why, **_as_captured(config, first),
        ),
        Anchor.BEFORE,
        -1,
    )
    # segments on their way to each side, oldest first
    in_flight: dict[Side, deque[int]] = {side: deque() for side in Side}
    server_seen = False
    for i, p in enumerate(conv.segments):
        side = conv.side(p)
        if side is Side.SERVER and not server_seen:
            server_seen = True
            _open_server(ends[Side.SERVER], conv, p, config)
        _deliver(conv, ends[side], in_flight[side], p.segment)
        ends[side].sending(i, p)
        if i not in delivery.lost:
            in_flight[side.other].append(i)
    if not server_seen:
        out.notes.append("the server sent nothing: its states are unknown")
    for side, end in ends.items():
        _deliver(conv, end, in_flight[side], None)
        end.finish()
    return out


def _deliver(
    conv: TcpConversation, to: _Endpoint, queue: deque[int], sending: TcpSegment | None
) -> None:
    """Hand ``to`` what had reached it by the time it sent ``sending`` (None: everything).

    Capture order is not arrival order: captured near the client, the server's FIN can
    show up after the client's although the server sent it first (a simultaneous close).
    So a segment occupying sequence space that the receiver's own next segment does not
    acknowledge (though it carries an ACK) had not arrived yet: it waits, with all behind
    it, until a later segment of the receiver's acknowledges it or the capture ends. A
    segment without ACK (an RST, a SYN) says nothing either way: capture order stands.
    """
    while queue:
        seg = conv.segments[queue[0]].segment
        if (
            sending is not None
            and sending.flags & TcpFlags.ACK
            and seg.seg_len
            and sending.ack < seg.seq + seg.seg_len
        ):
            to.held.add(queue[0])
            return
        index = queue.popleft()
        to.arriving(index, conv.segments[index])


class _Opening(TypedDict):
    """How one endpoint's replay is opened (Connection.open_* keywords)."""

    config: TcpConfig
    ts_offset: int


def _as_captured(config: TcpConfig, syn: CapturedSegment) -> _Opening:
    """An endpoint's replay offers timestamps only if its captured SYN did, with the TSval
    clock that SYN shows (RFC 7323: its offset), so that its RTT samples are the real ones."""
    tsopt = syn.segment.options.timestamps
    if tsopt is None:
        return {"config": dataclasses.replace(config, timestamps=False), "ts_offset": 0}
    return {"config": dataclasses.replace(config, timestamps=True),
            "ts_offset": tsopt[0] - int(syn.time * TICKS_PER_SECOND)}


def _open_server(
    server: _Endpoint, conv: TcpConversation, first: CapturedSegment, config: TcpConfig
) -> None:
    """Open the server's replay when its first segment shows its ISN (and that it had one)."""
    seg = first.segment
    if not seg.flags & TcpFlags.SYN:
        what = "a reset" if seg.flags & TcpFlags.RST else "a segment without SYN"
        server.out.notes.append(
            f"the server answered with {what}: no listener (no TCB), shown CLOSED"
        )
        server.out.marks.append(StateMark(Side.SERVER, State.CLOSED, Anchor.BEFORE, -1))
        server.no_tcb = True
        return
    opener = Connection.open_passive if seg.flags & TcpFlags.ACK else Connection.open_active
    server.start(
        opener(conv.server, conv.client, iss=seg.seq, now=conv.segments[0].time,
               explain=server.why, **_as_captured(config, first)),
        Anchor.BEFORE,
        -1,
    )
