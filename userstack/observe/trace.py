"""Trace lines in tcpdump's format, so a trace reads like `tcpdump -nn` output.

One line per packet crossing the link, e.g.

    12:00:01.000123 IP 10.0.0.1.43210 > 10.0.0.2.80: Flags [S], seq 3512, win 64240,
        options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0   (on one line)
    12:00:01.000456 IP6 fd00::1.43210 > fd00::2.80: Flags [S], seq 97, win 64800, ...
    12:00:01.000789 IP6 fd00::1 > fd00::2: ICMP6, echo request, id 7, seq 1, length 64

and one line per state change of a connection (RFC 9293 3.3.2 names):

    12:00:01.000456 10.0.0.2:80 10.0.0.1:43210 LISTEN -> SYN-RECEIVED

What tcpdump does, this does: flag letters in tcpdump's order (F S R P . U E W);
the SYN and the first ACK-bearing segment of a conversation print absolute
sequence numbers, later ones are relative to them (tcpdump's per-conversation
table, reset by every SYN-ACK); options in their order on the wire, nops included.
Only the trace parses packets, and only when tracing is on (the driver calls an
observer only if one is installed).

With offload, the trace shows what crossed the link, as tcpdump does on a TSO interface:
a super-segment is one line, `length 65160`, marked `(offloaded: TSO, gso_size 1448)` on
the way out or `(offloaded: super-segment)` on the way in. A packet whose checksum the
link vouches for is not checked here either; ours are completed first, so a wrong partial
checksum would show as `bad TCP checksum`.

The formatting is pure functions of (packet, conversation table); `Tracer` adds the
timestamp and the output file.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import TextIO

from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.errors import WireError
from ..wire.icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_type
from ..wire.icmpv6 import ICMPV6_ERROR_TYPES, Icmpv6Echo, Icmpv6Error, Icmpv6Type, icmpv6_type
from ..wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Packet
from ..wire.ipv6 import IPPROTO_ICMPV6, IPv6Packet
from ..wire.offload import LinkPacket, OffloadedPacket, SuperSegment, Vouched
from ..wire.packet import IPPacket, parse_ip
from ..wire.pcapng import Fault
from ..wire.tcp import TcpFlags, TcpSegment
from .hooks import Direction

_MASK = 0xFFFFFFFF

# tcpdump's tcp_flag_values, in its order.
_FLAG_LETTERS = (
    (TcpFlags.FIN, "F"),
    (TcpFlags.SYN, "S"),
    (TcpFlags.RST, "R"),
    (TcpFlags.PSH, "P"),
    (TcpFlags.ACK, "."),
    (TcpFlags.URG, "U"),
    (TcpFlags.ECE, "E"),
    (TcpFlags.CWR, "W"),
)

_OPTION_NAMES = {
    0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
    7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "ccecho", 19: "md5", 20: "scps",
    28: "uto", 29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp",
}


def flag_letters(flags: TcpFlags) -> str:
    """`[S.]`'s inside: tcpdump's letters for the flags set, or "none"."""
    return "".join(letter for flag, letter in _FLAG_LETTERS if flags & flag) or "none"


class Conversations:
    """tcpdump's table of initial sequence numbers, one entry per connection.

    tcpdump records a conversation at its first segment carrying ACK (normally the
    SYN-ACK), printing that one absolute, and prints later segments relative to it.
    `base[(sender, receiver)]` is the number subtracted from the sender's sequence
    numbers; a SYN-ACK (re)starts the entry, as in tcpdump.
    """

    def __init__(self) -> None:
        self._base: dict[tuple[Endpoint, Endpoint], int] = {}

    def relative(
        self, src: Endpoint, dst: Endpoint, seg: TcpSegment
    ) -> tuple[int, int, int]:
        """(seq, ack, sack_base) as tcpdump prints them for this segment."""
        seq, ack = seg.seq.value, seg.ack.value
        if not seg.flags & TcpFlags.ACK:
            return seq, ack, 0
        key, back = (src, dst), (dst, src)
        if key not in self._base or seg.flags & TcpFlags.SYN:
            self._base[key] = seq
            self._base[back] = (ack - 1) & _MASK
            return seq, ack, self._base[back]
        return (seq - self._base[key]) & _MASK, (ack - self._base[back]) & _MASK, self._base[back]


def format_options(raw: bytes, sack_base: int = 0) -> str:
    """The options area as tcpdump lists it, in wire order (`mss 1460,nop,wscale 7`)."""
    parts: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        name = _OPTION_NAMES.get(kind, f"unknown-{kind}")
        if kind in (0, 1):  # eol and nop are a single byte
            parts.append(name)
            i += 1
            if kind == 0:
                break
            continue
        length = raw[i + 1]
        data = raw[i + 2 : i + length]
        if kind in (2, 3):
            parts.append(f"{name} {int.from_bytes(data, 'big')}")
        elif kind == 8:
            parts.append(
                f"TS val {int.from_bytes(data[:4], 'big')} ecr {int.from_bytes(data[4:], 'big')}"
            )
        elif kind == 5:
            blocks = "".join(
                f"{{{(int.from_bytes(data[j:j + 4], 'big') - sack_base) & _MASK}:"
                f"{(int.from_bytes(data[j + 4:j + 8], 'big') - sack_base) & _MASK}}}"
                for j in range(0, len(data), 8)
            )
            parts.append(f"sack {len(data) // 8} {blocks}")
        elif data:
            parts.append(f"{name} 0x{data.hex()}")
        else:
            parts.append(name)
        i += length
    return ",".join(parts)


def _ip(ip: IPPacket) -> str:
    return "IP6" if isinstance(ip, IPv6Packet) else "IP"


def format_tcp(ip: IPPacket, seg: TcpSegment, conversations: Conversations) -> str:
    """One tcpdump -nn line (without the timestamp) for a TCP segment."""
    header_len = (ip.payload[12] >> 4) * 4
    return format_segment(
        Endpoint(ip.src, seg.src_port), Endpoint(ip.dst, seg.dst_port), seg,
        ip.payload[20:header_len], conversations,
    )


def format_segment(
    src: Endpoint, dst: Endpoint, seg: TcpSegment, options: bytes, conversations: Conversations
) -> str:
    """format_tcp's line from a parsed segment and its options area as it was on the wire."""
    seq, ack, sack_base = conversations.relative(src, dst, seg)
    length = len(seg.payload)
    name = "IP6" if src.ip.version == 6 else "IP"
    out = [f"{name} {src.ip}.{src.port} > {dst.ip}.{dst.port}: Flags [{flag_letters(seg.flags)}]"]
    if length or seg.flags & (TcpFlags.SYN | TcpFlags.FIN | TcpFlags.RST):
        out.append(f"seq {seq}:{(seq + length) & _MASK}" if length else f"seq {seq}")
    if seg.flags & TcpFlags.ACK:
        out.append(f"ack {ack}")
    out.append(f"win {seg.window}")
    if seg.flags & TcpFlags.URG:
        out.append(f"urg {seg.urgent}")
    if options:
        out.append(f"options [{format_options(options, sack_base)}]")
    out.append(f"length {length}")
    return ", ".join(out)


def format_icmp(ip: IPv4Packet, echo: IcmpEcho) -> str:
    """`IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64`."""
    kind = "echo request" if echo.type is IcmpType.ECHO_REQUEST else "echo reply"
    return (
        f"IP {ip.src} > {ip.dst}: ICMP {kind}, id {echo.identifier}, seq {echo.sequence}, "
        f"length {8 + len(echo.data)}"
    )


# How tcpdump (print-icmp.c) words Destination Unreachable codes without a port or MTU.
_UNREACHABLE_WORDS = {
    0: "net {dst} unreachable",
    1: "host {dst} unreachable",
    5: "{dst} unreachable - source route failed",
    6: "net {dst} unreachable - unknown",
    7: "host {dst} unreachable - unknown",
    8: "{dst} unreachable - source host isolated",
    9: "net {dst} unreachable - admin prohibited",
    10: "host {dst} unreachable - admin prohibited",
    11: "net {dst} unreachable - tos prohibited",
    12: "host {dst} unreachable - tos prohibited",
    13: "host {dst} unreachable - admin prohibited filter",
    14: "host {dst} unreachable - host precedence violation",
    15: "host {dst} unreachable - precedence cutoff",
}


def format_icmp_error(ip: IPv4Packet, error: IcmpError) -> str:
    """`IP 10.0.0.1 > 10.0.0.2: ICMP 10.0.0.1 tcp port 80 unreachable, length 36`."""
    dst, code = error.dst, error.code
    if error.type is IcmpType.DESTINATION_UNREACHABLE:
        if code == 2:
            text = f"{dst} protocol {error.protocol} unreachable"
        elif code == 3:
            proto = "tcp" if error.protocol == IPPROTO_TCP else f"ip-proto-{error.protocol}"
            text = f"{dst} {proto} port {error.dst_port} unreachable"
        elif code == 4:
            text = f"{dst} unreachable - need to frag (mtu {error.next_hop_mtu})"
        else:
            text = _UNREACHABLE_WORDS.get(code, "{dst} unreachable - #" + str(code)).format(dst=dst)
    elif error.type is IcmpType.TIME_EXCEEDED:
        text = "time exceeded in-transit" if code == 0 else "ip reassembly time exceeded"
    elif error.type is IcmpType.PARAMETER_PROBLEM:
        text = f"parameter problem - octet {ip.payload[4]}"  # the pointer (RFC 792)
    else:
        text = "source quench"
    return f"IP {ip.src} > {ip.dst}: ICMP {text}, length {len(ip.payload)}"


# How tcpdump (print-icmp6.c) words ICMPv6 errors and the messages we do not speak.
_UNREACHABLE6_WORDS = {
    0: "unreachable route {dst}",
    1: " unreachable prohibited {dst}",  # (tcpdump prints two spaces here)
    2: "beyond scope {dst}, source address {src}",
    3: "unreachable address {dst}",
}
_PROBLEM6_WORDS = {0: "erroneous", 1: "next header", 2: "option", 3: "incomplete header chain"}
_ICMPV6_NAMES = {
    130: "multicast listener query",
    131: "multicast listener report",
    132: "multicast listener done",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
    143: "multicast listener report v2",
}


def format_icmp6(ip: IPv6Packet) -> str:
    """`IP6 fd00::1 > fd00::2: ICMP6, echo request, id 7, seq 1, length 64`, and the
    errors as tcpdump words them."""
    message = ip.payload
    kind = icmpv6_type(message, ip.src, ip.dst)
    if kind in (Icmpv6Type.ECHO_REQUEST, Icmpv6Type.ECHO_REPLY):
        echo = Icmpv6Echo.parse(message, ip.src, ip.dst)
        name = "echo request" if kind == Icmpv6Type.ECHO_REQUEST else "echo reply"
        text = f"{name}, id {echo.identifier}, seq {echo.sequence}"
    elif kind in ICMPV6_ERROR_TYPES:
        error = Icmpv6Error.parse(message, ip.src, ip.dst)
        text = _icmp6_error_text(error)
    else:
        text = _ICMPV6_NAMES.get(kind, f"type-#{kind}")
    return f"IP6 {ip.src} > {ip.dst}: ICMP6, {text}, length {len(message)}"


def _icmp6_error_text(error: Icmpv6Error) -> str:
    code, dst = error.code, error.dst
    if error.type == Icmpv6Type.DESTINATION_UNREACHABLE:
        if code == 4:
            proto = "tcp" if error.protocol == IPPROTO_TCP else f"ip-proto-{error.protocol}"
            return f"destination unreachable, unreachable port, {dst} {proto} port {error.dst_port}"
        words = _UNREACHABLE6_WORDS.get(code, "unknown code ({code})")
        return "destination unreachable, " + words.format(dst=dst, src=error.src, code=code)
    if error.type == Icmpv6Type.PACKET_TOO_BIG:
        return f"packet too big, mtu {error.mtu}"
    if error.type == Icmpv6Type.TIME_EXCEEDED:
        if code == 1:
            return "time exceeded in-transit (reassembly)"
        return f"time exceeded in-transit for {dst}"
    words = _PROBLEM6_WORDS.get(code, f"code-#{code}")
    return f"parameter problem, {words} - octet {error.pointer}"


def format_packet(packet: LinkPacket, conversations: Conversations) -> str:
    """A tcpdump line for any packet; what cannot be parsed says why instead."""
    note = ""
    if type(packet) is OffloadedPacket:
        if packet.gso_size:
            note = f" (offloaded: TSO, gso_size {packet.gso_size})"
        packet = packet.complete()
    elif isinstance(packet, SuperSegment):
        note = " (offloaded: super-segment)"
    verify = not isinstance(packet, Vouched)
    try:
        ip = parse_ip(packet)
    except WireError as exc:
        name = "IP6" if packet and packet[0] >> 4 == 6 else "IP"
        return f"{name} bad packet ({exc}), length {len(packet)}"
    try:
        if isinstance(ip, IPv6Packet):
            fragment = ip.fragment
            if fragment is not None:  # reassembled by the stack, printed as tcpdump does
                return f"IP6 {ip.src} > {ip.dst}: frag ({fragment.offset * 8}|{len(ip.payload)})"
            if ip.protocol == IPPROTO_TCP:
                seg = TcpSegment.parse(ip.payload, ip.src, ip.dst, verify=verify)
                return format_tcp(ip, seg, conversations) + note
            if ip.protocol == IPPROTO_ICMPV6:
                return format_icmp6(ip)
            return f"IP6 {ip.src} > {ip.dst}: ip-proto-{ip.protocol} {len(ip.payload)}"
        if ip.protocol == IPPROTO_TCP:
            seg = TcpSegment.parse(ip.payload, ip.src, ip.dst, verify=verify)
            return format_tcp(ip, seg, conversations) + note
        if ip.protocol == IPPROTO_ICMP:
            if icmp_type(ip.payload) in ICMP_ERROR_TYPES:
                return format_icmp_error(ip, IcmpError.parse(ip.payload))
            return format_icmp(ip, IcmpEcho.parse(ip.payload))
        return f"IP {ip.src} > {ip.dst}: ip-proto-{ip.protocol} {len(ip.payload)}"
    except WireError as exc:
        return f"{_ip(ip)} {ip.src} > {ip.dst}: bad segment ({exc}), length {len(ip.payload)}"


def format_state_change(local: Endpoint, remote: Endpoint, old: State, new: State) -> str:
    """`10.0.0.2:80 10.0.0.1:43210 LISTEN -> SYN-RECEIVED`."""
    return f"{local} {remote} {old.value} -> {new.value}"


def format_clock(seconds: float) -> str:
    """HH:MM:SS.uuuuuu of a number of seconds (a time of day, or a time since the start)."""
    micros = round(seconds * 1_000_000)
    secs, micros = divmod(micros, 1_000_000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    return f"{hours:02d}:{mins:02d}:{secs:02d}.{micros:06d}"


class Tracer:
    """An Observer writing one line per packet and per state change.

    `relative=False` stamps lines with the local time of day like tcpdump; with
    `relative=True` it stamps the time since the first line like `tcpdump -ttttt`.
    The driver's `now` is its own clock, so wall time is `now` plus an offset
    measured at the first line.
    """

    def __init__(self, out: TextIO = sys.stdout, *, relative: bool = False) -> None:
        self.out = out
        self.relative = relative
        self.conversations = Conversations()
        self._origin: float | None = None

    def stamp(self, now: float) -> str:
        """The time stamp of a line written at `now` (LiveWhy stamps timer lines with it)."""
        if self._origin is None:
            self._origin = now if self.relative else now - time.time()
        t = now - self._origin
        if self.relative:
            return format_clock(t)
        local = datetime.datetime.fromtimestamp(t)
        return f"{local:%H:%M:%S}.{local.microsecond:06d}"

    def packet(self, direction: Direction, packet: LinkPacket, now: float) -> None:
        line = format_packet(packet, self.conversations)
        print(f"{self.stamp(now)} {line}", file=self.out, flush=True)

    def state_changed(
        self, local: Endpoint, remote: Endpoint, old: State, new: State, now: float
    ) -> None:
        print(f"{self.stamp(now)} {format_state_change(local, remote, old, new)}",
              file=self.out, flush=True)

    def fault(self, fault: Fault, direction: str, packet: LinkPacket, now: float) -> None:
        """What the fault link did to a packet (its `on_fault`): one line, the packet as
        tcpdump would print it, so a loss shows where it happened."""
        line = format_packet(packet, self.conversations)
        print(f"{self.stamp(now)} {format_fault(fault, direction)} {line}",
              file=self.out, flush=True)


def format_fault(fault: Fault, direction: str) -> str:
    """`fault link: dropped (send):`, the prefix of a fault's trace line."""
    return f"fault link: {fault.value} ({direction}):"

