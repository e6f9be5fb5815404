"""observe/closes.py on captures written by hand: the shapes it names, and what it leaves
out (a FIN sent again, a RST), as a loaded CI machine once made the kernel do."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from userstack.observe.closes import close_shapes
from userstack.wire import Endpoint, PcapWriter, TcpFlags
from userstack.wire.packet import build_tcp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpSegment

US, KERNEL = IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1")
ENDS = (Endpoint(US, 60936), Endpoint(KERNEL, 7000))  # client, server
F = TcpFlags
ISN = {True: 1000, False: 5000}  # ours, the kernel's
# (sent by us?, flags, SEG.SEQ - the sender's ISN, SEG.ACK - the other's ISN)
Step = tuple[bool, TcpFlags, int, int]
HANDSHAKE: list[Step] = [(True, F.SYN, 0, 0), (False, F.SYN | F.ACK, 0, 1),
                         (True, F.ACK, 1, 1)]


def capture(path: Path, steps: list[Step]) -> Path:
    """10.0.0.2:60936 > 10.0.0.1:7000, its handshake, then `steps`."""
    with path.open("wb") as f:
        writer = PcapWriter(f)
        for i, (ours, flags, seq, ack) in enumerate(HANDSHAKE + steps):
            ports = (60936, 7000) if ours else (7000, 60936)
            seg = TcpSegment(*ports, SeqNum(ISN[ours] + seq), SeqNum(ISN[not ours] + ack),
                             flags, 1000)
            src, dst = (US, KERNEL) if ours else (KERNEL, US)
            writer.write(build_tcp_packet(src, dst, seg), 1_700_000_000 + i / 1000)
    return path


FOUR_WAY: list[Step] = [(True, F.FIN | F.ACK, 1, 1), (False, F.ACK, 1, 2),
                        (False, F.FIN | F.ACK, 1, 2), (True, F.ACK, 2, 2)]


def test_a_four_way_close(tmp_path: Path) -> None:
    shapes = close_shapes(capture(tmp_path / "c.pcap", FOUR_WAY))
    assert shapes == {ENDS: "four-way"}


def test_a_fin_sent_again_and_the_rst_after_it_leave_a_four_way_close_four_way(
    tmp_path: Path,
) -> None:
    """Our ACK of the kernel's FIN was late: the kernel sent its FIN again, we ACKed it
    again from TIME-WAIT, and the kernel, closed by then, answered that with a RST."""
    again: list[Step] = [(False, F.FIN | F.ACK, 1, 2), (True, F.ACK, 2, 2),
                         (False, F.RST, 2, 0)]
    shapes = close_shapes(capture(tmp_path / "c.pcap", FOUR_WAY + again))
    assert shapes == {ENDS: "four-way"}


def test_a_three_way_and_a_simultaneous_close(tmp_path: Path) -> None:
    three: list[Step] = [(True, F.FIN | F.ACK, 1, 1), (False, F.FIN | F.ACK, 1, 2),
                         (True, F.ACK, 2, 2)]
    assert close_shapes(capture(tmp_path / "3.pcap", three)) == {ENDS: "three-way"}
    crossed: list[Step] = [(True, F.FIN | F.ACK, 1, 1), (False, F.FIN | F.ACK, 1, 1),
                           (True, F.ACK, 2, 2), (False, F.ACK, 2, 2)]
    assert close_shapes(capture(tmp_path / "s.pcap", crossed)) == {ENDS: "simultaneous"}


def test_anything_else_is_spelled_out(tmp_path: Path) -> None:
    odd: list[Step] = [(True, F.FIN | F.ACK, 1, 1), (False, F.ACK, 1, 2),
                       (True, F.ACK, 2, 1)]
    shapes = close_shapes(capture(tmp_path / "c.pcap", odd))
    assert shapes == {ENDS: "aF b. a."}
    assert close_shapes(capture(tmp_path / "o.pcap", [])) == {ENDS: "not closed"}
