"""Classic pcap files (LINKTYPE_RAW: each record is a bare IP packet, IPv4 or IPv6).

tcpdump -r and Wireshark read what PcapWriter writes. The format is four fixed
headers, so plain ``struct`` is enough; construct would add nothing here.
The writer takes any binary file object and never flushes: the caller decides.
pcapng, with queues and comments, is in pcapng.py (`open_capture` reads either).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from .errors import WireError

LINKTYPE_RAW = 101  # https://www.tcpdump.org/linktypes.html
_MAGIC_USEC = 0xA1B2C3D4
_MAGIC_NSEC = 0xA1B23C4D
_SNAPLEN = 0xFFFF
_FILE_HEADER = struct.Struct("<IHHiIII")  # magic, 2, 4, thiszone, sigfigs, snaplen, linktype
_RECORD = struct.Struct("<IIII")  # ts_sec, ts_frac, captured length, original length


class PcapWriter:
    """Writes the file header at once, then one record per ``write``."""

    def __init__(self, file: BinaryIO, linktype: int = LINKTYPE_RAW) -> None:
        self._file = file
        file.write(_FILE_HEADER.pack(_MAGIC_USEC, 2, 4, 0, 0, _SNAPLEN, linktype))

    def write(self, packet: bytes, timestamp: float) -> None:
        """One record: ``timestamp`` in seconds since the epoch, microsecond precision."""
        usec = round(timestamp * 1_000_000)
        sec, usec = divmod(usec, 1_000_000)
        captured = packet[:_SNAPLEN]
        self._file.write(_RECORD.pack(sec, usec, len(captured), len(packet)) + captured)


class PcapReader:
    """Iterates (timestamp, packet) over a pcap file; raises WireError if it is malformed.

    Accepts either byte order and microsecond or nanosecond timestamps. ``linktype``
    says what the packets are (LINKTYPE_RAW for files this module writes).
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        raw = file.read(_FILE_HEADER.size)
        if len(raw) < _FILE_HEADER.size:
            raise WireError("not a pcap file: shorter than the file header")
        for order in "<>":
            header = struct.unpack(order + _FILE_HEADER.format[1:], raw)
            if header[0] in (_MAGIC_USEC, _MAGIC_NSEC):
                break
        else:
            raise WireError(f"not a pcap file: magic {raw[:4].hex()}")
        self._divisor = 1e6 if header[0] == _MAGIC_USEC else 1e9
        self._record = struct.Struct(order + _RECORD.format[1:])
        self.snaplen: int = header[5]
        self.linktype: int = header[6]

    def records(self) -> Iterator[tuple[float, bytes, str | None]]:
        """(timestamp, packet, comment): classic pcap has no comments."""
        for timestamp, packet in self:
            yield timestamp, packet, None

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        record = self._record
        while True:
            raw = self._file.read(record.size)
            if not raw:
                return
            if len(raw) < record.size:
                raise WireError("pcap file ends inside a record header")
            sec, frac, captured, _ = record.unpack(raw)
            packet = self._file.read(captured)
            if len(packet) < captured:
                raise WireError("pcap file ends inside a packet")
            yield sec + frac / self._divisor, packet

