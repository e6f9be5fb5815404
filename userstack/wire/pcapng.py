"""pcapng files: one interface of raw IP (IPv4 and IPv6), a queue and a comment per packet.

A classic pcap (userstack.wire.pcap) has no room to say where a packet was seen or what
happened to it; pcapng gives every packet options. Layout: the pcapng draft
(draft-ietf-opsawg-pcapng): a Section Header Block, one Interface Description Block, then
Enhanced Packet Blocks, all little-endian, every block padded to 32 bits.

The one interface is LINKTYPE_RAW (101): each packet is a bare IP packet whose first
nibble says its version, so IPv4 and IPv6 share it and tcpdump and tshark decode each as
what it is. The alternatives were worse: LINKTYPE_IPV4 (228, what files before this
said) claims an IPv6 packet is IPv4 (tshark files one under ip:ipv6, so its filter `ip`
matches it; a stricter reader misdecodes it); one interface per family (228 and 229) is a
file libpcap refuses outright ("an interface has a type 229 different from the type of
the first interface": its API has one link type per file); and a second LINKTYPE_RAW
interface trips libpcap 1.10, which compares its LINKTYPE (101) with the DLT the first
one was mapped to (DLT_RAW, 12).

So a multi-queue TUN (`userstack serve --queues N --pcap FILE`) is what it is, one
interface ("us0") with N queues: each packet names its queue in the EPB's epb_queue option
(Wireshark's frame.interface_queue; tcpdump -r reads the packets but does not print it;
`PcapngReader.packets` yields it), one capture in time order.

A packet may carry a comment (opt_comment): userstack's fault link records there what it
did to the packet (`Fault`, `fault_comment`: "userstack fault link: dropped (send)"), so a
capture shows a loss where it happened, not only the retransmission that repaired it
(tshark -T fields -e frame.comment prints them; `PcapngReader.records` yields them).
`open_capture` reads a classic pcap or a pcapng file alike.

The reader also takes the pcapng files other tools write (dumpcap, Wireshark, `editcap -F
pcapng`) and userstack's older ones (LINKTYPE_IPV4, an interface per queue): each
interface's link type (Ethernet for a Linux `lo`, say) and timestamp resolution
(if_tsresol: dumpcap writes nanoseconds), as long as all of a file's interfaces have one
link type, and the file is little-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO

from .errors import WireError
from .pcap import LINKTYPE_RAW, PcapReader

LINKTYPE_IPV4 = 228  # raw IPv4 only: what userstack's pcapng files said before LINKTYPE_RAW

_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_SNAPLEN = 0xFFFF
_OPT_END, _OPT_COMMENT = 0, 1  # in every block
_OPT_IF_NAME, _OPT_IF_TSRESOL = 2, 9  # in an Interface Description Block
_OPT_EPB_QUEUE = 6  # in an Enhanced Packet Block: a u32, the queue the packet crossed


class Fault(Enum):
    """What a fault link did to a packet, as the packet's comment records it."""

    DROPPED = "dropped"  # never delivered: the record is the packet that was lost
    DUPLICATED = "duplicated"  # this record is the extra copy
    CORRUPTED = "corrupted"  # one bit flipped: the receiver's checksum drops it


_FAULT_PREFIX = "userstack fault link: "


def fault_comment(fault: Fault, direction: str) -> str:
    """The comment for a packet `fault` happened to, going `direction` ("send", "receive")."""
    return f"{_FAULT_PREFIX}{fault.value} ({direction})"


def fault_in(comment: str | None) -> Fault | None:
    """The fault a record's comment names, or None."""
    if comment is None or not comment.startswith(_FAULT_PREFIX):
        return None
    word = comment[len(_FAULT_PREFIX):].split(" ", 1)[0]
    return next((f for f in Fault if f.value == word), None)


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)  # type, length, body, length again
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def _options(*options: tuple[int, bytes]) -> bytes:
    """A block's options, each (code, value), and the end-of-options mark; b"" if none."""
    if not options:
        return b""
    encoded = b"".join(struct.pack("<HH", code, len(value)) + _pad(value)
                       for code, value in options)
    return encoded + struct.pack("<HH", _OPT_END, 0)


class PcapngWriter:
    """Writes the section header and the one interface (LINKTYPE_RAW, named `interface`,
    with `queues` queues) at once, then one block per ``write``."""

    def __init__(self, file: BinaryIO, interface: str, queues: int = 1) -> None:
        if queues < 1:
            raise ValueError(f"an interface has at least one queue, not {queues}")
        self._file = file
        self._queues = queues
        file.write(_block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)))
        file.write(_block(_IDB, struct.pack("<HHI", LINKTYPE_RAW, 0, _SNAPLEN)
                          + _options((_OPT_IF_NAME, interface.encode()))))

    def write(
        self, packet: bytes, timestamp: float, comment: str | None = None, *, queue: int = 0
    ) -> None:
        """One IP packet (either version) at `timestamp` seconds since the epoch
        (microseconds, pcapng's default resolution), with an optional comment; on a
        multi-queue interface, the queue it crossed (epb_queue)."""
        if not 0 <= queue < self._queues:
            raise ValueError(f"no queue {queue} on an interface of {self._queues}")
        usec = round(timestamp * 1_000_000)
        captured = packet[:_SNAPLEN]
        head = struct.pack("<IIIII", 0, usec >> 32, usec & 0xFFFFFFFF,
                           len(captured), len(packet))
        options: list[tuple[int, bytes]] = []
        if comment is not None:
            options.append((_OPT_COMMENT, comment.encode()))
        if self._queues > 1:
            options.append((_OPT_EPB_QUEUE, struct.pack("<I", queue)))
        self._file.write(_block(_EPB, head + _pad(captured) + _options(*options)))


@dataclass(frozen=True, slots=True)
class PcapngPacket:
    """One Enhanced Packet Block as read: which interface, which queue, when, what."""

    interface: int  # the index of its Interface Description Block
    queue: int | None  # epb_queue, None if the block names none (older userstack files:
    #                    there the interface index is the queue)
    timestamp: float  # seconds since the epoch
    data: bytes  # a frame of the interface's link type
    comment: str | None


class PcapngReader:
    """Reads a little-endian pcapng file (one this module wrote, or another tool's; see the
    module docstring): `packets()` or `records()`; `interfaces` are the names, by index,
    as the Interface Description Blocks arrive: those before the first packet at once.
    Other block types are skipped."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.interfaces: list[str] = []
        self._linktypes: list[int] = []
        self._ticks: list[int] = []  # timestamp units per second, by interface
        head = file.read(12)  # the block's type and length, the byte-order magic
        if len(head) < 12 or struct.unpack("<I", head[:4])[0] != _SHB:
            raise WireError("not a pcapng file: no Section Header Block")
        if struct.unpack("<I", head[8:])[0] != _BYTE_ORDER_MAGIC:
            raise WireError("a big-endian pcapng file: only little-endian ones are read")
        file.seek(-4, 1)
        self._skip_rest(head[:8])
        self._pending = self._next_block()  # the interfaces come first: read them now
        while self._pending is not None and self._pending[0] == _IDB:
            self._interface(self._pending[1])
            self._pending = self._next_block()

    def _skip_rest(self, head: bytes) -> bytes:
        length = struct.unpack("<I", head[4:])[0]
        body = self._file.read(length - 8)
        if length < 12 or len(body) < length - 8:
            raise WireError("pcapng file ends inside a block")
        return body[:-4]

    def _next_block(self) -> tuple[int, bytes] | None:
        head = self._file.read(8)
        if not head:
            return None
        if len(head) < 8:
            raise WireError("pcapng file ends inside a block header")
        return struct.unpack("<I", head[:4])[0], self._skip_rest(head)

    def _interface(self, body: bytes) -> None:
        self._linktypes.append(struct.unpack_from("<H", body)[0])
        name = _option(body[8:], _OPT_IF_NAME)
        self.interfaces.append(name.decode(errors="replace") if name else
                               f"interface {len(self.interfaces)}")
        resolution = _option(body[8:], _OPT_IF_TSRESOL)  # default: microseconds
        exponent = 6 if not resolution else resolution[0]
        self._ticks.append(2 ** (exponent & 0x7F) if exponent & 0x80 else 10**exponent)

    @property
    def linktype(self) -> int:
        """What the packets are: the link type every interface has (LINKTYPE_RAW in the
        files this module writes, LINKTYPE_IPV4 in older ones). Raises WireError if the
        interfaces differ."""
        kinds = set(self._linktypes)
        if len(kinds) > 1:
            raise WireError(f"pcapng interfaces of different link types: {sorted(kinds)}")
        return kinds.pop() if kinds else LINKTYPE_RAW

    def records(self) -> Iterator[tuple[float, bytes, str | None]]:
        """(timestamp, packet, comment), as `open_capture`'s readers all yield them."""
        for packet in self.packets():
            yield packet.timestamp, packet.data, packet.comment

    def packets(self) -> Iterator[PcapngPacket]:
        """Every Enhanced Packet Block, in file order."""
        block, self._pending = self._pending, None
        while block is not None:
            kind, body = block
            if kind == _IDB:
                self._interface(body)
            elif kind == _EPB:
                interface, high, low, captured, _ = struct.unpack_from("<IIIII", body)
                if interface >= len(self._ticks):
                    raise WireError(f"pcapng packet on interface {interface}, never described")
                options = body[20 + captured + (-captured % 4):]
                comment, queue = _option(options, _OPT_COMMENT), _option(options, _OPT_EPB_QUEUE)
                yield PcapngPacket(
                    interface, struct.unpack("<I", queue)[0] if queue and len(queue) == 4 else None,
                    ((high << 32) | low) / self._ticks[interface], body[20:20 + captured],
                    None if comment is None else comment.decode(errors="replace"))
            block = self._next_block()


def _option(options: bytes, wanted: int) -> bytes | None:
    """The value of option `wanted` in a block's options, or None."""
    offset = 0
    while offset + 4 <= len(options):
        code, length = struct.unpack_from("<HH", options, offset)
        if code == _OPT_END:
            break
        if code == wanted:
            return options[offset + 4:offset + 4 + length]
        offset += 4 + length + (-length % 4)
    return None


def open_capture(file: BinaryIO) -> PcapReader | PcapngReader:
    """A reader for a classic pcap or a pcapng file, by its first four bytes; both have
    `linktype` and `records()`."""
    start = file.read(4)
    file.seek(-len(start), 1)
    if start == struct.pack("<I", _SHB):
        return PcapngReader(file)
    return PcapReader(file)
