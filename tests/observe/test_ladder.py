"""`userstack ladder`: captures made by driving two userstack Connections against each other
in virtual time, written to a pcap, then drawn.

The strongest check: the states the ladder shows (replayed from the capture alone) are
exactly the states the two live connections went through while the capture was made.
"""

from __future__ import annotations

import argparse
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from userstack.cli import main
from userstack.observe.ladder import (
    add_ladder_parser,
    ladder_svg,
    render_ladder,
    segment_label,
)
from userstack.observe.replay import (
    CapturedSegment,
    Side,
    classify,
    find_connections,
    read_capture,
    replay,
)
from userstack.tcp.config import TcpConfig
from userstack.tcp.connection import Connection
from userstack.tcp.events import StateChanged
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.packet import build_tcp_packet
from userstack.wire.pcap import PcapWriter
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpSegment

CLIENT = Endpoint(IPv4Address("10.0.0.1"), 40000)
SERVER = Endpoint(IPv4Address("10.0.0.2"), 80)
NS = "{http://www.w3.org/2000/svg}"
HOP = 0.005  # one-way delay in virtual seconds
CONFIG = TcpConfig(delayed_ack=0.0, msl=1.0)

Drop = Callable[[Side, TcpSegment], bool]


@dataclass
class Live:
    conn: Connection
    states: list[State] = field(default_factory=list)

    def note(self) -> None:
        for ev in self.conn.take_events():
            if isinstance(ev, StateChanged) and (not self.states or self.states[-1] != ev.new):
                self.states.append(ev.new)


class Pair:
    """A client and a server Connection joined by a capturing wire, in virtual time.

    Every segment either side emits is written to the pcap when it leaves (the capture
    point is the sender's interface), then delivered HOP later unless ``lose`` says it
    is lost on the way; ``suppress`` drops it before it is sent or captured (to model a
    peer that merges an ACK into its next segment).
    """

    def __init__(self, writer: PcapWriter, *, client_port: int = CLIENT.port,
                 start: float = 1000.0) -> None:
        self.writer = writer
        self.t = start
        self.written = 0
        self.client_ep = Endpoint(CLIENT.ip, client_port)
        self.client = Live(Connection.open_active(
            self.client_ep, SERVER, iss=SeqNum(3_000_000_000), now=self.t, config=CONFIG))
        # a server ISN just below the wrap: relative numbers must still start at 0
        self.server = Live(Connection.open_passive(
            SERVER, self.client_ep, iss=SeqNum(2**32 - 10), now=self.t, config=CONFIG))
        for live in (self.client, self.server):
            live.states.append(live.conn.state)
            live.note()

    def pump(self, lose: Drop | None = None, suppress: Drop | None = None) -> None:
        """Move segments until both sides are quiet (timers fire only in fire())."""
        ends = ((Side.CLIENT, self.client, self.server, self.client_ep, SERVER),
                (Side.SERVER, self.server, self.client, SERVER, self.client_ep))
        moving = True
        while moving:
            moving = False
            for side, me, peer, src, dst in ends:
                for seg in me.conn.take_outgoing():
                    moving = True
                    if suppress and suppress(side, seg):
                        continue
                    self.t += HOP
                    self.writer.write(build_tcp_packet(src.ip, dst.ip, seg), self.t)
                    self.written += 1
                    if lose and lose(side, seg):
                        continue
                    self.t += HOP
                    peer.conn.on_segment(seg, self.t)
                    if peer.conn.readable:
                        peer.conn.receive(peer.conn.readable, self.t)
                me.note()
                peer.note()

    def fire(self, live: Live) -> None:
        """Let virtual time run to ``live``'s next timer (a retransmission timeout, 2*MSL)."""
        deadline = live.conn.next_deadline()
        assert deadline is not None
        self.t = max(self.t, deadline)
        live.conn.on_timer(self.t)
        live.note()


def _capture(tmp_path: Path, *runs: Callable[[Pair], None]) -> tuple[Path, list[Pair]]:
    """One pcap holding one connection per ``run``, on client ports 40000, 40001, ..."""
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    pairs: list[Pair] = []
    for i, run in enumerate(runs):
        pair = Pair(writer, client_port=CLIENT.port + i,
                    start=pairs[-1].t + 1 if pairs else 1000.0)
        run(pair)
        pairs.append(pair)
    path = tmp_path / "conn.pcap"
    path.write_bytes(buf.getvalue())
    return path, pairs


def _open_and_talk(pair: Pair) -> None:
    pair.pump()  # three-way handshake
    pair.client.conn.send(b"GET / HTTP/1.0\r\n\r\n", pair.t)
    pair.pump()
    pair.server.conn.send(b"HTTP/1.0 200 OK\r\n\r\nhello", pair.t)
    pair.pump()


def _four_way(pair: Pair) -> None:
    _open_and_talk(pair)
    pair.client.conn.close(pair.t)
    pair.pump()  # FIN, ACK: the server is in CLOSE-WAIT until it closes too
    pair.server.conn.close(pair.t)
    pair.pump()  # FIN, ACK
    pair.fire(pair.client)  # 2*MSL


def _three_way(pair: Pair) -> None:
    _open_and_talk(pair)
    pair.client.conn.close(pair.t)
    # the server closes as soon as the FIN arrives and its ACK rides on its own FIN
    # (what Linux does when the application closes at once): FIN, FIN+ACK, ACK.
    pair.pump(suppress=_close_instead_of_acking_the_fin(pair))
    pair.fire(pair.client)


def _close_instead_of_acking_the_fin(pair: Pair) -> Drop:
    def suppress(side: Side, seg: TcpSegment) -> bool:
        if side is Side.SERVER and seg.flags == TcpFlags.ACK and not seg.payload and (
            pair.server.conn.state is State.CLOSE_WAIT
        ):
            pair.server.conn.close(pair.t)  # queues FIN+ACK, which acknowledges the FIN too
            pair.server.note()
            return True
        return False

    return suppress


def _simultaneous(pair: Pair) -> None:
    _open_and_talk(pair)
    pair.client.conn.close(pair.t)
    pair.server.conn.close(pair.t)  # both FINs are sent before either arrives
    pair.pump()
    pair.fire(pair.client)
    pair.fire(pair.server)


def _half_close(pair: Pair) -> None:
    pair.pump()
    pair.client.conn.send(b"request", pair.t)
    pair.client.conn.close(pair.t, half=True)  # shutdown(SHUT_WR): still reading
    pair.pump()
    pair.server.conn.send(b"the answer, after the client's FIN", pair.t)
    pair.pump()
    pair.server.conn.close(pair.t)
    pair.pump()
    pair.fire(pair.client)


LOST = b"this segment is lost once"


def _lossy(pair: Pair) -> None:
    pair.pump()
    lost_once = False

    def lose(side: Side, seg: TcpSegment) -> bool:
        nonlocal lost_once
        if seg.payload == LOST and not lost_once:
            lost_once = True
            return True
        return False

    pair.client.conn.send(LOST, pair.t)
    pair.pump(lose=lose)
    assert lost_once
    pair.fire(pair.client)  # retransmission timeout: the data goes again
    pair.pump(lose=lose)
    pair.client.conn.close(pair.t)
    pair.pump()
    pair.server.conn.close(pair.t)
    pair.pump()
    pair.fire(pair.client)


def _svg(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _arrows(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if "segment" in g.get("class", "").split()]


def _states(root: ET.Element, side: Side) -> list[str]:
    return [
        g.get("data-state", "")
        for g in root.iter(f"{NS}g")
        if g.get("class", "").split() == ["state-mark", side.value]
    ]


def _render(tmp_path: Path, pcap: Path, connection: int | None = None) -> tuple[ET.Element, object]:
    out = tmp_path / "conn.svg"
    ladder = render_ladder(pcap, out, connection)
    return _svg(out), ladder


def test_four_way_close(tmp_path: Path) -> None:
    pcap, (pair,) = _capture(tmp_path, _four_way)
    root, ladder = _render(tmp_path, pcap)
    assert len(_arrows(root)) == pair.written == len(read_capture(pcap).segments)
    client, server = _states(root, Side.CLIENT), _states(root, Side.SERVER)
    assert client == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT",
                      "CLOSED"]
    assert server == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK",
                      "CLOSED"]
    # what the replay derived from the capture alone is what the live connections did
    assert client == [str(s) for s in pair.client.states]
    assert server == [str(s) for s in pair.server.states]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]
    assert not [g for g in _arrows(root) if "retx" in g.get("class", "")]


def test_three_way_close_fin_ack_in_one_segment(tmp_path: Path) -> None:
    pcap, (pair,) = _capture(tmp_path, _three_way)
    segments = read_capture(pcap).segments
    fins = [p.segment.flags for p in segments if p.segment.flags & TcpFlags.FIN]
    assert fins == [TcpFlags.FIN | TcpFlags.ACK] * 2
    server_fin = next(p for p in segments if p.src == SERVER and p.segment.flags & TcpFlags.FIN)
    client_fin = next(p for p in segments if p.src != SERVER and p.segment.flags & TcpFlags.FIN)
    assert server_fin.segment.ack == client_fin.segment.seq + 1  # the ACK rides on the FIN

    root, _ = _render(tmp_path, pcap)
    assert len(_arrows(root)) == len(segments)
    client = _states(root, Side.CLIENT)
    server = _states(root, Side.SERVER)
    assert client == [str(s) for s in pair.client.states]
    assert server == [str(s) for s in pair.server.states]
    assert client[:3] == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1"]
    assert client[-2:] == ["TIME-WAIT", "CLOSED"]
    assert server == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK",
                      "CLOSED"]


def test_simultaneous_close_goes_through_closing(tmp_path: Path) -> None:
    pcap, (pair,) = _capture(tmp_path, _simultaneous)
    root, ladder = _render(tmp_path, pcap)
    assert len(_arrows(root)) == pair.written
    closing = ["FIN-WAIT-1", "CLOSING", "TIME-WAIT", "CLOSED"]
    # captured at each sender, the server's FIN shows up after the client's although the
    # server sent it before the client's arrived: the replay must not take CLOSE-WAIT
    assert _states(root, Side.CLIENT) == ["SYN-SENT", "ESTABLISHED", *closing]
    assert _states(root, Side.SERVER) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", *closing]
    assert _states(root, Side.CLIENT) == [str(s) for s in pair.client.states]
    assert _states(root, Side.SERVER) == [str(s) for s in pair.server.states]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]


def test_half_close_data_after_the_fin_is_still_received(tmp_path: Path) -> None:
    pcap, (pair,) = _capture(tmp_path, _half_close)
    root, ladder = _render(tmp_path, pcap)
    assert _states(root, Side.CLIENT) == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
                                          "TIME-WAIT", "CLOSED"]
    assert _states(root, Side.CLIENT) == [str(s) for s in pair.client.states]
    assert _states(root, Side.SERVER) == [str(s) for s in pair.server.states]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]


def test_lost_segment_is_marked_and_its_retransmission_too(tmp_path: Path) -> None:
    pcap, (pair,) = _capture(tmp_path, _lossy)
    root, ladder = _render(tmp_path, pcap)
    arrows = _arrows(root)
    assert len(arrows) == pair.written
    segments = read_capture(pcap).segments
    carrying = [p.number for p in segments if p.segment.payload == LOST]
    assert len(carrying) == 2
    by_number = {int(g.get("data-packet", "0")): g.get("class", "").split() for g in arrows}
    assert "lost" in by_number[carrying[0]] and "retx" not in by_number[carrying[0]]
    assert "retx" in by_number[carrying[1]] and "lost" not in by_number[carrying[1]]
    assert sum("retx" in c for c in by_number.values()) == 1
    assert sum("lost" in c for c in by_number.values()) == 1
    text = ET.tostring(root, encoding="unicode")
    assert "(retransmission)" in text
    assert _states(root, Side.CLIENT) == [str(s) for s in pair.client.states]
    assert _states(root, Side.SERVER) == [str(s) for s in pair.server.states]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]


def test_connection_choice_list_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap, (first, second) = _capture(tmp_path, _four_way, _lossy)

    conns = find_connections(read_capture(pcap).segments)
    assert [c.client.port for c in conns] == [40000, 40001]

    assert ladder_cli([str(pcap), "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and "10.0.0.1:40001 > 10.0.0.2:80" in listing[1]

    out = tmp_path / "second.svg"
    assert ladder_cli([str(pcap), "-o", str(out), "--connection", "1"]) == 0
    root = _svg(out)
    assert len(_arrows(root)) == second.written
    assert "10.0.0.1:40001" in root.findtext(f"{NS}title", "")

    parser = argparse.ArgumentParser()
    add_ladder_parser(parser.add_subparsers())
    args = parser.parse_args(["ladder", str(pcap), "--connection", "0"])
    assert args.run(args) == 0
    assert len(_arrows(_svg(pcap.with_suffix(".svg")))) == first.written

    assert ladder_cli([str(pcap), "-o", str(out), "--connection", "2"]) == 1
    assert "no connection 2" in capsys.readouterr().err
    assert ladder_cli([str(tmp_path / "missing.pcap")]) == 1


def test_labels_are_relative_and_tcpdump_styled() -> None:
    syn_ack = TcpSegment(80, 40000, SeqNum(5), SeqNum(3_000_000_001),
                         TcpFlags.SYN | TcpFlags.ACK, 65535)
    assert segment_label(syn_ack, SeqNum(5), SeqNum(3_000_000_000)) == "[S.] seq 0 ack 1 win 65535"
    data = TcpSegment(40000, 80, SeqNum(10), SeqNum(2), TcpFlags.PSH | TcpFlags.ACK, 502,
                      payload=b"x" * 100)
    # sequence numbers that wrapped past 2**32 since the ISN are still small
    assert segment_label(data, SeqNum(2**32 - 91), SeqNum(1)) == (
        "[P.] seq 101:201 ack 1 win 502 len 100"
    )


def _write_pcap(path: Path, packets: list[tuple[float, Endpoint, Endpoint, TcpSegment]]) -> Path:
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    for t, src, dst, seg in packets:
        writer.write(build_tcp_packet(src.ip, dst.ip, seg), t)
    path.write_bytes(buf.getvalue())
    return path


def _seg(src: Endpoint, seq: int, ack: int, flags: TcpFlags, payload: bytes = b"") -> TcpSegment:
    dst = SERVER if src == CLIENT else CLIENT
    return TcpSegment(src.port, dst.port, SeqNum(seq), SeqNum(ack), flags, 64240,
                      payload=payload)


def test_refused_connection_has_no_server_tcb(tmp_path: Path) -> None:
    pcap = _write_pcap(tmp_path / "refused.pcap", [
        (1.0, CLIENT, SERVER, _seg(CLIENT, 100, 0, TcpFlags.SYN)),
        (1.001, SERVER, CLIENT, _seg(SERVER, 0, 101, TcpFlags.RST | TcpFlags.ACK)),
    ])
    root, ladder = _render(tmp_path, pcap)
    assert len(_arrows(root)) == 2
    assert _states(root, Side.CLIENT) == ["SYN-SENT", "CLOSED"]
    assert _states(root, Side.SERVER) == ["CLOSED"]
    assert any("no listener" in n for n in ladder.replay.notes)  # type: ignore[attr-defined]


def test_a_capture_the_replay_cannot_follow_is_still_drawn(tmp_path: Path) -> None:
    # the client "sends data" after its FIN: no RFC 9293 endpoint does that
    pcap = _write_pcap(tmp_path / "odd.pcap", [
        (1.0, CLIENT, SERVER, _seg(CLIENT, 100, 0, TcpFlags.SYN)),
        (1.1, SERVER, CLIENT, _seg(SERVER, 900, 101, TcpFlags.SYN | TcpFlags.ACK)),
        (1.2, CLIENT, SERVER, _seg(CLIENT, 101, 901, TcpFlags.FIN | TcpFlags.ACK)),
        (1.3, CLIENT, SERVER, _seg(CLIENT, 102, 901, TcpFlags.PSH | TcpFlags.ACK, b"late")),
        (1.4, SERVER, CLIENT, _seg(SERVER, 901, 102, TcpFlags.ACK)),
    ])
    root, ladder = _render(tmp_path, pcap)
    assert len(_arrows(root)) == 5
    notes = ladder.replay.notes  # type: ignore[attr-defined]
    assert any("replay of the client stopped at packet #4" in n for n in notes)
    assert any("stopped at packet #4" in (t.text or "") for t in root.iter(f"{NS}text"))


def test_replay_catches_up_with_a_sender_whose_first_flight_is_bigger(tmp_path: Path) -> None:
    # Linux starts with ten segments in flight (RFC 6928); the core starts with three
    # (RFC 5681). The server's one ACK for all ten must still bring the client along.
    a, s = TcpFlags.ACK, TcpFlags.SYN
    packets = [
        (1.0, CLIENT, SERVER, _seg(CLIENT, 100, 0, s)),
        (1.01, SERVER, CLIENT, _seg(SERVER, 900, 101, s | a)),
        (1.02, CLIENT, SERVER, _seg(CLIENT, 101, 901, a)),
    ]
    packets += [
        (1.03 + i / 1000, CLIENT, SERVER,
         _seg(CLIENT, 101 + 1460 * i, 901, a, bytes(1460)))
        for i in range(10)
    ]
    end = 101 + 14600
    packets += [
        (1.05, CLIENT, SERVER, _seg(CLIENT, end, 901, TcpFlags.FIN | a)),
        (1.06, SERVER, CLIENT, _seg(SERVER, 901, end + 1, TcpFlags.FIN | a)),
        (1.07, CLIENT, SERVER, _seg(CLIENT, end + 1, 902, a)),
    ]
    root, ladder = _render(tmp_path, _write_pcap(tmp_path / "iw10.pcap", packets))
    assert ladder.replay.notes == []  # type: ignore[attr-defined]
    assert _states(root, Side.CLIENT) == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "TIME-WAIT",
                                          "CLOSED"]
    assert _states(root, Side.SERVER) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT",
                                          "LAST-ACK", "CLOSED"]


LINUX_CAPTURE = Path(__file__).parents[2] / "docs" / "images" / "ladder-linux-loopback.pcap"


def test_a_real_linux_capture(tmp_path: Path) -> None:
    """tcpdump -i lo of nc talking to nc -l (Ethernet link type, checksums left to the
    NIC, timestamps): the server closes first, then the client's late request is answered
    with a reset because nobody reads it any more."""
    root, ladder = _render(tmp_path, LINUX_CAPTURE)
    assert len(_arrows(root)) == 8
    assert _states(root, Side.CLIENT) == ["SYN-SENT", "ESTABLISHED", "CLOSE-WAIT", "CLOSED"]
    assert _states(root, Side.SERVER) == [
        "LISTEN", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSED"
    ]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]


_FLAGS = st.sampled_from([
    TcpFlags.ACK, TcpFlags.PSH | TcpFlags.ACK, TcpFlags.FIN | TcpFlags.ACK, TcpFlags.SYN,
    TcpFlags.SYN | TcpFlags.ACK, TcpFlags.RST, TcpFlags.RST | TcpFlags.ACK,
    TcpFlags.FIN | TcpFlags.PSH | TcpFlags.ACK,
])
_SEGMENT = st.tuples(
    st.booleans(), st.integers(0, 3000), st.integers(0, 3000), _FLAGS,
    st.integers(0, 1500), st.floats(0, 5),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_SEGMENT, max_size=25))
def test_any_capture_is_drawn_without_crashing(rest: list[tuple]) -> None:
    """Whatever the segments, every one becomes an arrow and the SVG parses: where the
    replay cannot follow, it says so in a note instead of failing."""
    packets = [CapturedSegment(1, 0.0, CLIENT, SERVER, _seg(CLIENT, 7, 0, TcpFlags.SYN))]
    t = 0.0
    for from_client, seq, ack, flags, n, dt in rest:
        src = CLIENT if from_client else SERVER
        base, peer = (7, 100) if from_client else (100, 7)
        t += dt
        seg = _seg(src, base + seq, peer + ack, flags, bytes(n if flags & TcpFlags.ACK else 0))
        dst = SERVER if from_client else CLIENT
        packets.append(CapturedSegment(len(packets) + 1, t, src, dst, seg))
    conversations = find_connections(packets)
    assert sum(len(c.segments) for c in conversations) == len(packets)  # all start with SYN
    for conv in conversations:
        delivery = classify(conv)
        svg = ladder_svg(conv, delivery, replay(conv, delivery), "random")
        assert len(_arrows(ET.fromstring(svg))) == len(conv.segments)


def test_an_rst_the_stack_answers_with_is_not_an_abort(tmp_path: Path) -> None:
    # RFC 9293 3.10.7.4: in SYN-RECEIVED an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>
    # and the connection stays; the client's proper ACK then completes the handshake.
    a = TcpFlags.ACK
    pcap = _write_pcap(tmp_path / "bad-ack.pcap", [
        (1.0, CLIENT, SERVER, _seg(CLIENT, 100, 0, TcpFlags.SYN)),
        (1.1, SERVER, CLIENT, _seg(SERVER, 900, 101, TcpFlags.SYN | a)),
        (1.2, CLIENT, SERVER, _seg(CLIENT, 101, 5000, a)),
        (1.3, SERVER, CLIENT, _seg(SERVER, 5000, 0, TcpFlags.RST)),
        (1.4, CLIENT, SERVER, _seg(CLIENT, 101, 901, a)),
    ])
    root, ladder = _render(tmp_path, pcap)
    assert _states(root, Side.SERVER) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    assert ladder.replay.notes == []  # type: ignore[attr-defined]


def ladder_cli(argv: list[str]) -> int:
    """`userstack ladder ARGS...`, through the real command line."""
    return main(["ladder", *argv])
