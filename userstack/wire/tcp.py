"""The TCP header (RFC 9293 3.1) as a frozen dataclass; construct stays behind it.

CONTRACT (fields and method signatures are shared by every layer; the codec body
is filled in by the wire work):

- TcpSegment.build(src, dst) -> bytes: header + options + payload, checksum over the
  RFC 9293 3.1 pseudo-header filled in.
- TcpSegment.parse(data, src, dst) -> TcpSegment: validates data offset, option
  lengths and checksum; raises WireError and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from .seq import SeqNum


class TcpFlags(IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options this stack understands (RFC 9293 3.2, RFC 7323, RFC 2018).

    Field order is not kept: build() writes a canonical layout. Unknown kinds are
    carried as (kind, data) so nothing a peer sends is silently lost in a round trip.
    """

    mss: int | None = None  # kind 2 (RFC 9293 3.7.1)
    window_scale: int | None = None  # kind 3, shift count (RFC 7323 2)
    sack_permitted: bool = False  # kind 4 (RFC 2018)
    sack_blocks: tuple[tuple[SeqNum, SeqNum], ...] = ()  # kind 5: (left, right) edges
    timestamps: tuple[int, int] | None = None  # kind 8: (TSval, TSecr) (RFC 7323 3)
    unknown: tuple[tuple[int, bytes], ...] = ()  # any other kind, as (kind, data)


NO_OPTIONS = TcpOptions()


@dataclass(frozen=True, slots=True)
class TcpSegment:
    src_port: int
    dst_port: int
    seq: SeqNum
    ack: SeqNum
    flags: TcpFlags
    window: int  # the 16-bit header field as sent: NOT scaled
    options: TcpOptions = NO_OPTIONS
    payload: bytes = b""
    urgent: int = 0

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one for SYN and one for FIN (RFC 9293 3.4)."""
        return len(self.payload) + bool(self.flags & TcpFlags.SYN) + bool(self.flags & TcpFlags.FIN)
