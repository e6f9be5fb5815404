"""Trace lines: unit checks, and a comparison with the real tcpdump on the same packets."""

from __future__ import annotations

import io
import shutil
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from userstack.observe.hooks import Direction
from userstack.observe.trace import (
    Conversations,
    Tracer,
    flag_letters,
    format_clock,
    format_packet,
    format_state_change,
)
from userstack.tcp.state import State
from userstack.wire import (
    FragmentHeader,
    IcmpEcho,
    IcmpType,
    Icmpv6Echo,
    Icmpv6Type,
    IPv6Packet,
    PcapWriter,
    SeqNum,
    TcpFlags,
    TcpOptions,
    TcpSegment,
    build_icmp_error_packet,
    build_icmp_packet,
    build_icmpv6_error_packet,
    build_icmpv6_packet,
    build_tcp6_packet,
    build_tcp_packet,
)
from userstack.wire.addr import Endpoint

C, S = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")
F = TcpFlags


def tcp(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, seq: int, ack: int,
        flags: TcpFlags, *, payload: bytes = b"", options: TcpOptions | None = None,
        window: int = 502, urgent: int = 0) -> bytes:
    seg = TcpSegment(sport, dport, SeqNum(seq), SeqNum(ack), flags, window,
                     options or TcpOptions(), payload, urgent)
    return build_tcp_packet(src, dst, seg)


CISS, SISS = 4_294_967_000, 123_456  # the client's ISS wraps around 2**32 mid-connection
SYN_OPTS = TcpOptions(mss=1460, sack_permitted=True, timestamps=(11, 0), window_scale=7)


def conversation() -> list[bytes]:
    """A handshake, data both ways, SACK, urgent, ECN bits, odd options, resets, pings."""
    c, s = CISS, SISS
    return [
        tcp(C, S, 43210, 80, c, 0, F.SYN, options=SYN_OPTS, window=64240),
        tcp(S, C, 80, 43210, s, c + 1, F.SYN | F.ACK,
            options=TcpOptions(mss=1460, window_scale=7), window=65535),
        tcp(C, S, 43210, 80, c + 1, s + 1, F.ACK),
        tcp(C, S, 43210, 80, c + 1, s + 1, F.PSH | F.ACK, payload=b"x" * 500),
        tcp(S, C, 80, 43210, s + 1, c + 501, F.ACK, options=TcpOptions(timestamps=(5, 6))),
        tcp(S, C, 80, 43210, s + 1, c + 501, F.ACK,
            options=TcpOptions(sack_blocks=((SeqNum(c + 1001), SeqNum(c + 1501)),))),
        tcp(C, S, 43210, 80, c + 501, s + 1, F.ACK | F.URG, payload=b"u", urgent=1),
        tcp(C, S, 43210, 80, c + 502, s + 1, F.ACK | F.ECE | F.CWR),
        tcp(S, C, 80, 43210, s + 1, c + 502, F.ACK,
            options=TcpOptions(unknown=((99, b"\x01\x02"),))),
        tcp(S, C, 80, 43210, s + 1, c + 502, F.ACK, options=TcpOptions(mss=536)),
        tcp(S, C, 80, 43210, s + 1, c + 502, F.FIN | F.PSH | F.ACK, payload=b"bye"),
        tcp(C, S, 43210, 80, c + 502, s + 5, F.FIN | F.ACK),
        tcp(S, C, 80, 43210, s + 5, c + 503, F.ACK),
        tcp(C, S, 43210, 80, c + 503, 0, F.RST),  # no ACK: printed absolute
        tcp(S, C, 80, 43210, 7, 99, F.RST | F.ACK),
        tcp(S, C, 81, 50000, 0, 0, TcpFlags(0)),  # no flags at all
        # a second connection where the server end sorts first (tcpdump's "rev")
        tcp(S, C, 9, 1024, 1000, 0, F.SYN, options=TcpOptions(mss=1460)),
        tcp(C, S, 1024, 9, 7000, 1001, F.SYN | F.ACK),
        tcp(S, C, 9, 1024, 1001, 7001, F.PSH | F.ACK, payload=b"abc"),
        tcp(C, S, 1024, 9, 7001, 1004, F.ACK),
        build_icmp_packet(C, S, IcmpEcho(IcmpType.ECHO_REQUEST, 77, 1, b"p" * 56)),
        build_icmp_packet(S, C, IcmpEcho(IcmpType.ECHO_REPLY, 77, 1, b"p" * 56)),
        *icmp_errors(tcp(C, S, 43210, 80, c + 1, s + 1, F.PSH | F.ACK, payload=b"x" * 500)),
        *ipv6_packets(),
    ]


C6, S6 = IPv6Address("fd00::1"), IPv6Address("fd00::2")


def tcp6(sport: int, dport: int, seq: int, ack: int, flags: TcpFlags, **kw: object) -> bytes:
    src, dst = (C6, S6) if dport == 80 else (S6, C6)
    seg = TcpSegment(sport, dport, SeqNum(seq), SeqNum(ack), flags, 502, **kw)  # type: ignore[arg-type]
    return build_tcp6_packet(src, dst, seg)


def ipv6_packets() -> list[bytes]:
    """An IPv6 handshake and data, ping, every ICMPv6 error, a fragment, link chatter."""
    quoted = tcp6(43211, 80, 5001, 7001, F.PSH | F.ACK, payload=b"y" * 100)
    errors = [
        (Icmpv6Type.DESTINATION_UNREACHABLE, code, 0) for code in range(5)
    ] + [
        (Icmpv6Type.PACKET_TOO_BIG, 0, 1280),
        (Icmpv6Type.TIME_EXCEEDED, 0, 0),
        (Icmpv6Type.TIME_EXCEEDED, 1, 0),
        *((Icmpv6Type.PARAMETER_PROBLEM, code, 6) for code in range(4)),
    ]
    return [
        tcp6(43211, 80, 5000, 0, F.SYN, options=TcpOptions(mss=1440, sack_permitted=True)),
        tcp6(80, 43211, 7000, 5001, F.SYN | F.ACK, options=TcpOptions(mss=1440)),
        tcp6(43211, 80, 5001, 7001, F.ACK),
        quoted,
        tcp6(80, 43211, 7001, 5101, F.FIN | F.ACK),
        build_icmpv6_packet(C6, S6, Icmpv6Echo(Icmpv6Type.ECHO_REQUEST, 7, 1, b"p" * 56)),
        build_icmpv6_packet(S6, C6, Icmpv6Echo(Icmpv6Type.ECHO_REPLY, 7, 1, b"p" * 56)),
        *(build_icmpv6_error_packet(S6, C6, k, code, quoted, value=v) for k, code, v in errors),
        IPv6Packet(C6, S6, 6, bytes(16), headers=(FragmentHeader(9, 2, True),)).build(),
        build_icmpv6_packet(IPv6Address("fe80::1"), IPv6Address("ff02::2"), Icmpv6Echo(133, 0, 0)),
    ]


def icmp_errors(quoted: bytes) -> list[bytes]:
    """The ICMP errors the stack acts on (RFC 9293 3.9.2.1), about one of C's packets."""
    unreachable = IcmpType.DESTINATION_UNREACHABLE
    return [
        build_icmp_error_packet(S, C, kind, code, quoted, next_hop_mtu=mtu)
        for kind, code, mtu in [
            *((unreachable, code, 0) for code in range(16) if code != 4),
            (unreachable, 4, 1280),
            (IcmpType.SOURCE_QUENCH, 0, 0),
            (IcmpType.TIME_EXCEEDED, 0, 0),
            (IcmpType.TIME_EXCEEDED, 1, 0),
            (IcmpType.PARAMETER_PROBLEM, 0, 0),
        ]
    ]


def ours(packets: list[bytes]) -> list[str]:
    conversations = Conversations()
    return [format_packet(p, conversations) for p in packets]


def test_flag_letters_follow_tcpdump() -> None:
    assert flag_letters(F.SYN) == "S"
    assert flag_letters(F.SYN | F.ACK) == "S."
    assert flag_letters(F.ACK) == "."
    assert flag_letters(F.PSH | F.ACK) == "P."
    assert flag_letters(F.FIN | F.ACK) == "F."
    assert flag_letters(F.FIN | F.PSH | F.ACK) == "FP."
    assert flag_letters(F.RST) == "R"
    assert flag_letters(F.RST | F.ACK) == "R."
    assert flag_letters(TcpFlags(0)) == "none"


def test_handshake_lines() -> None:
    lines = ours(conversation()[:4])
    assert lines[0] == (
        f"IP 10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq {CISS}, win 64240, "
        "options [mss 1460,sackOK,TS val 11 ecr 0,nop,wscale 7], length 0"
    )
    assert lines[1] == (
        f"IP 10.0.0.2.80 > 10.0.0.1.43210: Flags [S.], seq {SISS}, ack {CISS + 1}, win 65535, "
        "options [mss 1460,nop,wscale 7], length 0"
    )
    assert lines[2] == "IP 10.0.0.1.43210 > 10.0.0.2.80: Flags [.], ack 1, win 502, length 0"
    assert lines[3] == (
        "IP 10.0.0.1.43210 > 10.0.0.2.80: Flags [P.], seq 1:501, ack 1, win 502, length 500"
    )


def test_sack_blocks_are_relative_to_the_receiver_space() -> None:
    assert ours(conversation()[:6])[5].endswith("options [nop,nop,sack 1 {1001:1501}], length 0")


def test_unparseable_packets_say_why() -> None:
    good = conversation()[3]
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert "bad TCP checksum" in format_packet(corrupt, Conversations())
    assert format_packet(b"\x45\x00", Conversations()).startswith("IP bad packet (")


def test_state_change_line() -> None:
    local, remote = Endpoint(S, 80), Endpoint(C, 43210)
    assert format_state_change(local, remote, State.LISTEN, State.SYN_RECEIVED) == (
        "10.0.0.2:80 10.0.0.1:43210 LISTEN -> SYN-RECEIVED"
    )


def test_format_clock() -> None:
    assert format_clock(0) == "00:00:00.000000"
    assert format_clock(3723.0000015) == "01:02:03.000002"


def test_tracer_writes_stamped_lines() -> None:
    out = io.StringIO()
    tracer = Tracer(out, relative=True)
    tracer.packet(Direction.IN, conversation()[0], 100.0)
    tracer.state_changed(Endpoint(S, 80), Endpoint(C, 43210), State.LISTEN,
                         State.SYN_RECEIVED, 100.25)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("00:00:00.000000 IP 10.0.0.1.43210 > 10.0.0.2.80: Flags [S]")
    assert lines[1] == "00:00:00.250000 10.0.0.2:80 10.0.0.1:43210 LISTEN -> SYN-RECEIVED"


def test_tracer_wall_clock_looks_like_tcpdump() -> None:
    out = io.StringIO()
    Tracer(out).packet(Direction.OUT, conversation()[0], 5.0)
    stamp = out.getvalue().split(" ", 1)[0]
    assert len(stamp) == 15 and stamp[2] == stamp[5] == ":" and stamp[8] == "."


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_lines_match_real_tcpdump(tmp_path: Path) -> None:
    packets = conversation()
    pcap = tmp_path / "trace.pcap"
    with pcap.open("wb") as f:
        writer = PcapWriter(f)
        for i, packet in enumerate(packets):
            writer.write(packet, 1_700_000_000 + i / 1000)
    result = subprocess.run(
        ["tcpdump", "-nn", "-t", "-r", str(pcap)], capture_output=True, text=True, check=True
    )
    theirs = result.stdout.splitlines()
    assert len(theirs) == len(packets)
    for mine, real in zip(ours(packets), theirs, strict=True):
        # tcpdump goes on to decode some payloads (": HTTP: ..."); the TCP part must match
        assert real.startswith(mine), f"\nours:    {mine}\ntcpdump: {real}"


def test_offloaded_packets_print_as_tcpdump_on_a_tso_interface() -> None:
    from userstack.wire.offload import OffloadedPacket, PartialChecksum, SuperSegment

    seg = TcpSegment(80, 43210, SeqNum(1000), SeqNum(2000), F.ACK, 512, payload=bytes(45 * 1448))
    out = OffloadedPacket.from_segment(S, C, seg, gso_size=1448)
    line = format_packet(out, Conversations())
    assert line.endswith(", length 65160 (offloaded: TSO, gso_size 1448)")
    assert "bad" not in line
    plain = format_packet(out.complete(), Conversations())
    assert line == plain + " (offloaded: TSO, gso_size 1448)"
    # Coming in, the checksum field holds the pseudo-header sum only: not checked, marked.
    arrived = SuperSegment(out.header + out.payload)
    assert format_packet(arrived, Conversations()) == plain + " (offloaded: super-segment)"
    small = OffloadedPacket.from_segment(S, C, seg.__class__(80, 43210, SeqNum(1), SeqNum(2),
                                                              F.ACK, 512, payload=b"x"))
    assert format_packet(small, Conversations()) == format_packet(small.complete(),
                                                                  Conversations())
    partial = PartialChecksum(small.header + small.payload)
    assert "bad" not in format_packet(partial, Conversations())
