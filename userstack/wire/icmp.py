"""ICMPv4 echo request and reply (RFC 792), the only ICMP this stack answers.

``icmp_type`` checks any ICMP message (length, checksum) and says which type it is, so
the stack can tell a message it does not use (destination unreachable, ...; RFC 1122
3.2.2 lets a host silently discard those) from garbage. ``IcmpEcho.parse`` refuses
anything but an echo request or reply with WireError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from construct import Int8ub, Int16ub, Struct

from ._layout import Layout
from .checksum import internet_checksum, ones_complement_sum
from .errors import WireError

ICMP_ECHO_HEADER = Layout(
    Struct(
        "type" / Int8ub,
        "code" / Int8ub,
        "checksum" / Int16ub,
        "identifier" / Int16ub,
        "sequence" / Int16ub,
    )
)
_HDR = ICMP_ECHO_HEADER.fast


def icmp_type(data: bytes | bytearray | memoryview) -> int:
    """The type of a valid ICMP message (the IP payload); raises WireError for one that is
    shorter than the 8-byte header every type has, or whose checksum is wrong (RFC 792)."""
    n = len(data)
    if n < 8:
        raise WireError(f"ICMP message too short for a header: {n} bytes")
    if ones_complement_sum(data) != 0xFFFF:
        raise WireError("bad ICMP checksum")
    return data[0]


class IcmpType(IntEnum):
    ECHO_REPLY = 0
    ECHO_REQUEST = 8


@dataclass(frozen=True, slots=True)
class IcmpEcho:
    type: IcmpType
    identifier: int
    sequence: int
    data: bytes = b""
    code: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> IcmpEcho:
        """Validate and decode an echo request or reply (the IP payload); raises WireError."""
        kind = icmp_type(data)
        if kind not in (IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY):
            raise WireError(f"ICMP type {kind} is not an echo request or reply")
        _, code, _, identifier, sequence = _HDR.unpack_from(data)
        return cls(IcmpType(kind), identifier, sequence, bytes(data[8:]), code)

    def build(self) -> bytes:
        """Header (checksum over header and data filled in) followed by the data."""
        try:
            header = _HDR.pack(self.type, self.code, 0, self.identifier, self.sequence)
        except struct.error as e:
            raise ValueError(f"cannot build ICMP echo {self!r}: {e}") from e
        checksum = internet_checksum(self.data, ones_complement_sum(header))
        return header[:2] + checksum.to_bytes(2, "big") + header[4:] + self.data

    def reply(self) -> IcmpEcho:
        """The echo reply to this request: same identifier, sequence and data (RFC 792)."""
        if self.type != IcmpType.ECHO_REQUEST:
            raise ValueError(f"only an echo request has a reply, not {self.type.name}")
        return IcmpEcho(IcmpType.ECHO_REPLY, self.identifier, self.sequence, self.data)
