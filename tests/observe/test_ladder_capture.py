"""The capture side of `userstack ladder`: finding connections, reading link types, and
inferring retransmissions and losses from hand-made segment sequences."""

from __future__ import annotations

import io
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from userstack.observe.ladder import render_ladder
from userstack.observe.replay import (
    CapturedSegment,
    Side,
    TcpConversation,
    classify,
    find_connections,
    read_capture,
)
from userstack.wire.addr import Endpoint
from userstack.wire.icmp import IcmpEcho, IcmpType
from userstack.wire.packet import build_icmp_packet, build_tcp6_packet, build_tcp_packet
from userstack.wire.pcap import PcapWriter
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpSegment

C = Endpoint(IPv4Address("192.168.1.10"), 50000)
S = Endpoint(IPv4Address("192.168.1.20"), 443)
SYN, ACK, PSH, FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.PSH, TcpFlags.FIN


def seg(src: Endpoint, seq: int, ack: int, flags: TcpFlags, payload: bytes = b"") -> TcpSegment:
    dst = S if src == C else C
    return TcpSegment(src.port, dst.port, SeqNum(seq), SeqNum(ack), flags, 1000, payload=payload)


def captured(*segs: tuple[Endpoint, TcpSegment]) -> list[CapturedSegment]:
    return [
        CapturedSegment(i + 1, float(i), src, S if src == C else C, s)
        for i, (src, s) in enumerate(segs)
    ]


def conversation(*segs: tuple[Endpoint, TcpSegment]) -> TcpConversation:
    (conv,) = find_connections(captured(*segs))
    return conv


HANDSHAKE = (
    (C, seg(C, 100, 0, SYN)),
    (S, seg(S, 900, 101, SYN | ACK)),
    (C, seg(C, 101, 901, ACK)),
)


def test_connections_in_order_of_first_syn_and_port_reuse() -> None:
    other = Endpoint(C.ip, 50001)
    packets = captured(
        (C, seg(C, 5, 5, ACK)),  # mid-stream leftovers of an older connection: left out
        *HANDSHAKE,
        (C, seg(C, 100, 0, SYN)),  # the same SYN again: a retransmission, same connection
        (other, TcpSegment(other.port, S.port, SeqNum(7), SeqNum(0), SYN, 1000)),
        (C, seg(C, 5000, 0, SYN)),  # new ISN on the same 4-tuple: the next connection
    )
    packets[5] = CapturedSegment(6, 5.0, other, S, packets[5].segment)
    conns = find_connections(packets)
    assert [(c.client, len(c.segments)) for c in conns] == [(C, 4), (other, 1), (C, 1)]
    assert conns[0].server == S
    assert conns[0].isn(conns[0].side(packets[2])) == SeqNum(900)


def test_resent_data_is_a_retransmission_and_the_unacked_original_lost() -> None:
    conv = conversation(
        *HANDSHAKE,
        (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 3: lost
        (C, seg(C, 111, 901, PSH | ACK, b"b" * 10)),  # 4: arrives
        (S, seg(S, 901, 101, ACK)),  # 5: duplicate ACK
        (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 6: retransmission
        (S, seg(S, 901, 121, ACK)),
    )
    d = classify(conv)
    assert d.retransmitted == {6}
    assert d.lost == {3}


def test_a_resend_after_its_ack_was_captured_is_not_a_loss() -> None:
    conv = conversation(
        *HANDSHAKE,
        (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 3
        (S, seg(S, 901, 111, ACK)),  # 4: covers it (the ACK then got lost past the capture)
        (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 5: spurious retransmission
    )
    d = classify(conv)
    assert d.retransmitted == {5}
    assert d.lost == frozenset()


def test_syn_and_fin_retransmissions() -> None:
    conv = conversation(
        (C, seg(C, 100, 0, SYN)),  # 0: lost
        (C, seg(C, 100, 0, SYN)),  # 1
        (S, seg(S, 900, 101, SYN | ACK)),
        (C, seg(C, 101, 901, ACK)),
        (C, seg(C, 101, 901, FIN | ACK)),  # 4: lost
        (C, seg(C, 101, 901, FIN | ACK)),  # 5
        (S, seg(S, 901, 102, ACK)),
    )
    d = classify(conv)
    assert d.retransmitted == {1, 5}
    assert d.lost == {0, 4}


def _ethernet(ip: bytes) -> bytes:
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip


def test_reads_ethernet_captures_with_padding_and_skips_other_protocols(tmp_path: Path) -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=1)
    syn = build_tcp_packet(C.ip, S.ip, seg(C, 100, 0, SYN))
    w.write(_ethernet(syn) + b"\x00" * 6, 1.0)  # padded to the 60-byte minimum frame
    ping = build_icmp_packet(C.ip, S.ip, IcmpEcho(IcmpType.ECHO_REQUEST, 1, 1, b"hi"))
    w.write(_ethernet(ping), 1.5)
    w.write(b"\x02" * 12 + b"\x86\xdd" + b"\x60" + b"\x00" * 39, 1.7)  # IPv6: not ours
    w.write(_ethernet(build_tcp_packet(S.ip, C.ip, seg(S, 900, 101, SYN | ACK))), 2.0)
    path = tmp_path / "eth.pcap"
    path.write_bytes(buf.getvalue())

    capture = read_capture(path)
    assert capture.skipped == 2
    assert [(p.number, p.time, p.src) for p in capture.segments] == [(1, 1.0, C), (4, 2.0, S)]


def test_an_ipv6_capture_is_replayed_into_a_ladder(tmp_path: Path) -> None:
    """Raw IP (LINKTYPE_RAW) holds both families; an Ethernet frame may carry IPv6 too."""
    c6, s6 = Endpoint(IPv6Address("fd00::1"), 50000), Endpoint(IPv6Address("fd00::2"), 80)

    def seg6(src: Endpoint, seq: int, ack: int, flags: TcpFlags) -> bytes:
        dst = s6 if src == c6 else c6
        segment = TcpSegment(src.port, dst.port, SeqNum(seq), SeqNum(ack), flags, 1000)
        return build_tcp6_packet(src.ip, dst.ip, segment)

    closes = [
        seg6(c6, 100, 0, SYN), seg6(s6, 900, 101, SYN | ACK), seg6(c6, 101, 901, ACK),
        seg6(c6, 101, 901, FIN | ACK), seg6(s6, 901, 102, ACK), seg6(s6, 901, 102, FIN | ACK),
        seg6(c6, 102, 902, ACK),
    ]
    raw, eth = io.BytesIO(), io.BytesIO()
    raw_writer, eth_writer = PcapWriter(raw), PcapWriter(eth, linktype=1)
    for i, packet in enumerate(closes):
        raw_writer.write(packet, float(i))
        eth_writer.write(b"\x02" * 12 + b"\x86\xdd" + packet, float(i))
    for name, buf in (("raw6.pcap", raw), ("eth6.pcap", eth)):
        path = tmp_path / name
        path.write_bytes(buf.getvalue())
        assert [p.src for p in read_capture(path).segments][:2] == [c6, s6]
    ladder = render_ladder(tmp_path / "raw6.pcap", tmp_path / "raw6.svg")
    client = [m.state.value for m in ladder.replay.marks if m.side is Side.CLIENT]
    assert client == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT",
                      "CLOSED"]
    assert ladder.replay.notes == []
    assert "[fd00::2]:80" in (tmp_path / "raw6.svg").read_text()
