"""Plays packetdrill-format scripts against a userstack, in virtual time, through its sockets.

A script is packetdrill's: one event a line, each at a time. The stack under test is
192.168.0.1 on a memory link; the script is the remote end, 192.0.2.1, writing the
packets that arrive (`<`) and stating the packets the stack must send (`>`), while
the system calls on the stack's UserSockets run at their times. Everything runs under
trio's MockClock, so a script that waits 240 s for TIME-WAIT takes milliseconds.

The subset of packetdrill's grammar understood here (see tests/pkt/README.md):

    time      `0.100` absolute, `+0.1` after the previous line, `*` any time (outbound)
    syscall   NAME(ARGS) = RESULT [ERRNO (text)]  for socket, setsockopt, getsockopt,
              fcntl (accepted, ignored: every socket is non-blocking), bind, listen,
              accept, connect, write, send, read, recv, shutdown, close; `...` stands
              for an argument the runner fills in (addresses, buffers)
    packet    `<` or `>`, flags (S F R P and `.` for ACK), `start:end(len)` relative to
              the sender's initial sequence number, `ack N`, `win N`, options in
              `<mss N,sackOK,TS val N ecr N,nop,wscale N>` (`<...>` in an outbound
              packet: any). As packetdrill does, an outbound `TS val N` names the
              stack's TSval, whatever it is, and an inbound `ecr N` echoes the TSval so
              named; an outbound `ecr` must be exactly the script's inbound `val`.

Differences from packetdrill, each on purpose: sockets are always non-blocking (a
blocking call would need packetdrill's `...` timing syntax); outbound packets must
arrive within TOLERANCE of their time; sequence numbers are always relative; the
remote port is fixed (REMOTE_PORT) and the listener's port is 8080.
"""

from __future__ import annotations

import errno
import re
import socket
import struct
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import trio

from userstack import TcpConfig, UserStack, memory_link_pair, open_stack
from userstack.link.memory import MemoryLink
from userstack.sockets import UserSocket
from userstack.wire.packet import build_tcp_packet, parse_tcp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

LOCAL, REMOTE = IPv4Address("192.168.0.1"), IPv4Address("192.0.2.1")
LOCAL_PORT, REMOTE_PORT = 8080, 40000
REMOTE_ISN = 1_000_000  # the script's initial sequence number
TOLERANCE = 0.02  # seconds an outbound packet may be off its stated time
FLAG_LETTERS = {"S": TcpFlags.SYN, "F": TcpFlags.FIN, "R": TcpFlags.RST, "P": TcpFlags.PSH,
                ".": TcpFlags.ACK}


class ScriptError(AssertionError):
    """The stack did not do what the script says; the message names the line."""


@dataclass(frozen=True)
class Line:
    number: int
    time: float | None  # absolute seconds from the start, None for `*`
    text: str


@dataclass(frozen=True)
class Packet:
    inbound: bool
    flags: TcpFlags
    start: int
    end: int
    ack: int | None
    win: int | None
    options: TcpOptions | None  # None: not checked (`<...>` or absent outbound)


_PACKET = re.compile(
    r"^(?P<dir>[<>])\s+(?P<flags>[SFRP.]+)\s+(?P<start>\d+):(?P<end>\d+)\((?P<len>\d+)\)"
    r"(?:\s+ack\s+(?P<ack>\d+))?(?:\s+win\s+(?P<win>\d+))?(?:\s+<(?P<opts>[^>]*)>)?\s*$"
)
_SYSCALL = re.compile(
    r"^(?P<name>\w+)\((?P<args>.*)\)\s*=\s*(?P<result>-?\d+)(?:\s+(?P<errno>E[A-Z]+))?"
)


def parse(text: str) -> Iterator[Line]:
    """The script's lines with absolute times; `//` and `#` comments and blank lines go."""
    now = 0.0
    for number, raw in enumerate(text.splitlines(), 1):
        body = re.split(r"//|#", raw, maxsplit=1)[0].strip()
        if not body:
            continue
        stamp, _, event = body.partition(" ")
        if stamp == "*":
            yield Line(number, None, event.strip())
            continue
        now = now + float(stamp[1:]) if stamp.startswith("+") else float(stamp)
        yield Line(number, now, event.strip())


def parse_packet(text: str) -> Packet:
    m = _PACKET.match(text)
    if m is None:
        raise ValueError(f"not a packet in the subset: {text!r}")
    flags = TcpFlags(0)
    for letter in m["flags"]:
        flags |= FLAG_LETTERS[letter]
    start, end = int(m["start"]), int(m["end"])
    if end - start != int(m["len"]):
        raise ValueError(f"{start}:{end} is not ({m['len']}) bytes")
    opts = m["opts"]
    options: TcpOptions | None
    if opts is None:
        options = None if m["dir"] == ">" else TcpOptions()
    elif opts.strip() == "...":
        options = None
    else:
        options = _options(opts)
    return Packet(m["dir"] == "<", flags, start, end, _int(m["ack"]), _int(m["win"]), options)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


_TS = re.compile(r"TS val (\d+) ecr (\d+)")


def _options(text: str) -> TcpOptions:
    mss = scale = None
    sack = False
    timestamps = None
    for item in (part.strip() for part in text.split(",")):
        ts = _TS.fullmatch(item)
        if ts is not None:
            timestamps = (int(ts[1]), int(ts[2]))
        elif item.startswith("mss "):
            mss = int(item[4:])
        elif item.startswith("wscale "):
            scale = int(item[7:])
        elif item == "sackOK":
            sack = True
        elif item not in ("nop", "eol"):
            raise ValueError(f"option not in the subset: {item!r}")
    return TcpOptions(mss=mss, window_scale=scale, sack_permitted=sack, timestamps=timestamps)


class Runner:
    """One script against one stack; see the module docstring."""

    def __init__(self, stack: UserStack, link: MemoryLink, path: Path) -> None:
        self.stack = stack
        self.link = link  # the remote end of the stack's link
        self.path = path
        self.fds: dict[int, UserSocket] = {}
        self.next_fd = 3
        self.iss: int | None = None  # the stack's ISS, learned from its SYN
        self.local_port = LOCAL_PORT  # the stack's port in the connection under test
        self.outbound: list[tuple[float, TcpSegment]] = []
        self.tsvals: dict[int, int] = {}  # the script's name for each TSval of the stack's
        self.arrived = trio.Event()
        self.start = 0.0

    def fail(self, line: Line, why: str) -> ScriptError:
        return ScriptError(f"{self.path.name}:{line.number}: {line.text}\n  {why}")

    async def collect(self) -> None:
        while True:
            data = await self.link.receive()
            _, seg = parse_tcp_packet(data)
            self.outbound.append((trio.current_time() - self.start, seg))
            self.arrived.set()

    async def run(self) -> None:
        self.start = trio.current_time()
        for line in parse(self.path.read_text()):
            if line.time is not None and not line.text.startswith(">"):
                await trio.sleep_until(self.start + line.time)
                await trio.testing.wait_all_tasks_blocked()
                self.no_stray_packets(line)
            if line.text.startswith(">"):
                await self.expect(line, parse_packet(line.text))
            elif line.text.startswith("<"):
                await self.inject(parse_packet(line.text))
            else:
                await self.syscall(line)
        await trio.sleep(TOLERANCE)
        await trio.testing.wait_all_tasks_blocked()
        self.no_stray_packets(Line(0, None, "(end of script)"))

    def no_stray_packets(self, line: Line) -> None:
        if self.outbound:
            at, seg = self.outbound[0]
            raise self.fail(line, f"the stack sent {self.describe(seg)} at {at:.3f} s, "
                                  "which the script does not expect")

    # ---- packets ----------------------------------------------------------------------

    async def inject(self, packet: Packet) -> None:
        seq = SeqNum(REMOTE_ISN + packet.start)
        ack = SeqNum(0) if packet.ack is None else SeqNum((self.iss or 0) + packet.ack)
        flags = packet.flags
        options = packet.options or TcpOptions()
        if options.timestamps is not None:  # `ecr N`: the stack's TSval the script named N
            val, ecr = options.timestamps
            options = replace(options, timestamps=(val, self.tsvals.get(ecr, ecr)))
        seg = TcpSegment(REMOTE_PORT, self.local_port, seq, ack, flags,
                         65535 if packet.win is None else packet.win,
                         options, bytes(packet.end - packet.start))
        await self.link.send(build_tcp_packet(int(REMOTE), int(LOCAL), seg))

    async def expect(self, line: Line, packet: Packet) -> None:
        deadline = None if line.time is None else self.start + line.time + TOLERANCE
        with trio.move_on_at(deadline if deadline is not None else trio.current_time() + 600):
            while not self.outbound:
                self.arrived = trio.Event()
                await self.arrived.wait()
        if not self.outbound:
            raise self.fail(line, "the stack sent nothing")
        at, seg = self.outbound.pop(0)
        if line.time is not None and abs(at - line.time) > TOLERANCE:
            raise self.fail(line, f"{self.describe(seg)} came at {at:.3f} s")
        if seg.flags & TcpFlags.SYN:  # each SYN of ours sets the ISS, as in packetdrill
            self.iss = int(seg.seq)
            self.local_port = seg.src_port
        want = self.describe_expected(packet)
        got = self.describe(seg, checked=packet)
        if want != got:
            raise self.fail(line, f"expected {want}, the stack sent {got}")
        named = None if packet.options is None else packet.options.timestamps
        if named is not None and seg.options.timestamps is not None:
            self.tsvals[named[0]] = seg.options.timestamps[0]

    def relative(self, seg: TcpSegment) -> tuple[int, int]:
        start = (int(seg.seq) - (self.iss or 0)) % 2**32
        return start, start + len(seg.payload)

    def describe(self, seg: TcpSegment, checked: Packet | None = None) -> str:
        flags = "".join(letter for letter, bit in FLAG_LETTERS.items() if seg.flags & bit)
        start, end = self.relative(seg)
        text = f"{flags} {start}:{end}({end - start})"
        if seg.flags & TcpFlags.ACK and (checked is None or checked.ack is not None):
            text += f" ack {(int(seg.ack) - REMOTE_ISN) % 2**32}"
        if checked is None or checked.win is not None:
            text += f" win {seg.window}"
        if checked is not None and checked.options is not None:
            options, named = seg.options, checked.options.timestamps
            if named is not None and options.timestamps is not None:
                options = replace(options, timestamps=(named[0], options.timestamps[1]))
            text += f" {_show_options(options)}"
        return text

    def describe_expected(self, packet: Packet) -> str:
        flags = "".join(letter for letter, bit in FLAG_LETTERS.items() if packet.flags & bit)
        text = f"{flags} {packet.start}:{packet.end}({packet.end - packet.start})"
        if packet.ack is not None:
            text += f" ack {packet.ack}"
        if packet.win is not None:
            text += f" win {packet.win}"
        if packet.options is not None:
            text += f" {_show_options(packet.options)}"
        return text

    # ---- system calls -----------------------------------------------------------------

    async def syscall(self, line: Line) -> None:
        m = _SYSCALL.match(line.text)
        if m is None:
            raise ValueError(f"{self.path.name}:{line.number}: not in the subset: {line.text}")
        args = _split_args(m["args"])
        want = int(m["result"]), m["errno"]
        try:
            got = await self.call(m["name"], args), None
        except OSError as e:
            got = -1, errno.errorcode.get(e.errno or 0, str(e.errno))
        if got != want:
            raise self.fail(line, f"returned {got[0]} {got[1] or ''}".rstrip())

    async def call(self, name: str, args: list[str]) -> int:
        if name == "socket":
            sock = self.stack.socket()
            fd, self.next_fd = self.next_fd, self.next_fd + 1
            self.fds[fd] = sock
            return fd
        if name == "fcntl":
            return 0  # every socket is non-blocking
        sock = self.fds[int(args[0])]
        if name == "bind":
            sock.bind_now(("", LOCAL_PORT))
        elif name == "listen":
            sock.listen(int(args[1]))
        elif name == "accept":
            if not sock.is_readable():
                raise BlockingIOError(errno.EAGAIN, "no connection yet")
            child, _ = await sock.accept()
            fd, self.next_fd = self.next_fd, self.next_fd + 1
            self.fds[fd] = child
            return fd
        elif name == "connect":
            sock.start_connect((str(REMOTE), REMOTE_PORT))
        elif name in ("write", "send"):
            return await sock.send(bytes(int(args[2])), socket.MSG_DONTWAIT)
        elif name in ("read", "recv"):
            return len(await sock.recv(int(args[2]), socket.MSG_DONTWAIT))
        elif name == "shutdown":
            sock.shutdown(getattr(socket, args[1]))
        elif name == "close":
            sock.close()
        elif name == "setsockopt":
            level, option = getattr(socket, args[1]), getattr(socket, args[2])
            sock.setsockopt(level, option, _value(args[3]))
        elif name == "getsockopt":
            level, option = getattr(socket, args[1]), getattr(socket, args[2])
            value = sock.getsockopt(level, option)
            if value != _value(args[3]):
                raise ScriptError(f"getsockopt {args[2]} is {value}, not {args[3]}")
        else:
            raise ValueError(f"system call not in the subset: {name}")
        return 0


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments (brackets and braces keep their commas)."""
    out, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    out.append(current.strip())
    return out


def _value(text: str) -> Any:
    """[1] -> 1; {onoff=1, linger=0} -> struct linger bytes."""
    text = text.strip()
    if text.startswith("{"):
        fields = dict(part.split("=") for part in text.strip("{}").replace(" ", "").split(","))
        return struct.pack("ii", int(fields["onoff"]), int(fields["linger"]))
    text = text.strip("[]")
    if text.startswith("E") and hasattr(errno, text):
        return getattr(errno, text)
    return getattr(socket, text) if text.isidentifier() else int(text)


def _show_options(options: TcpOptions) -> str:
    parts = []
    if options.mss is not None:
        parts.append(f"mss {options.mss}")
    if options.sack_permitted:
        parts.append("sackOK")
    if options.timestamps is not None:
        parts.append("TS val {} ecr {}".format(*options.timestamps))
    if options.window_scale is not None:
        parts.append(f"wscale {options.window_scale}")
    return "<" + ",".join(parts) + ">"


@asynccontextmanager
async def stack_for(config: TcpConfig | None = None) -> Any:
    """The stack under test at LOCAL, and the remote end of its link."""
    ours, theirs = memory_link_pair()
    async with open_stack(ours, str(LOCAL), config=config, isn_key=b"packetdrill") as stack:
        yield stack, theirs


async def play(path: Path, config: TcpConfig | None = None) -> None:
    """Play one script; ScriptError names the first line the stack did not follow."""
    try:
        async with stack_for(config) as (stack, link), trio.open_nursery() as nursery:
            runner = Runner(stack, link, path)
            nursery.start_soon(runner.collect)
            await runner.run()
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failed, others = group.split(ScriptError)
        if failed is None or others is not None:
            raise
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None  # the script's own failure, not trio's nursery around it
