"""The TCP header (RFC 9293 3.1) as a frozen dataclass; construct stays behind it.

CONTRACT (fields and method signatures are shared by every layer; the codec body
is filled in by the wire work):

- TcpSegment.build(src, dst) -> bytes: header + options + payload, checksum over the
  RFC 9293 3.1 pseudo-header filled in.
- TcpSegment.parse(data, src, dst) -> TcpSegment: validates data offset, option
  lengths and checksum; raises WireError and nothing else.

Options (RFC 9293 3.2): EOL ends the list (what follows is padding), NOP is skipped,
every other kind carries a length byte that must be >= 2 and stay inside the header.
MSS (2), window scale (3), SACK-permitted (4), SACK (5) and timestamps (8) must have
their fixed lengths; other kinds are kept raw in ``TcpOptions.unknown``. A kind that
appears twice keeps its last value, as Linux does. Values are not range-checked
beyond what the bytes can hold (a window scale above 14 is the core's business,
RFC 7323 2.3). The reserved bits of byte 12 (including the old NS/AE bit) are ignored.

`TcpSegment.ecn` is not in the TCP header: it is the ECN field of the IP header the segment
arrives in or leaves in (RFC 3168 5), so the core, which never sees IP, can read a CE mark
and mark its data ECT(0). The stack passes it to `parse`; the packet builders put it into
the TOS byte or traffic class (wire/packet.py, wire/offload.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from construct import Int8ub, Int16ub, Int32ub, Struct

from ._layout import Layout
from .checksum import Address, internet_checksum, ones_complement_sum, pseudo_header_sum
from .errors import WireError
from .ipv4 import Ecn
from .seq import SeqNum

_IPPROTO_TCP = 6


class TcpFlags(IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


_FLAGS = tuple(TcpFlags(i) for i in range(256))
_ECN = tuple(Ecn(i) for i in range(4))

TCP_HEADER = Layout(
    Struct(
        "src_port" / Int16ub,
        "dst_port" / Int16ub,
        "seq" / Int32ub,
        "ack" / Int32ub,
        "data_offset" / Int8ub,  # data offset in 32-bit words (4 bits), reserved (4 bits)
        "flags" / Int8ub,
        "window" / Int16ub,
        "checksum" / Int16ub,
        "urgent" / Int16ub,
    )
)
_HDR = TCP_HEADER.fast

# Option kinds (IANA "TCP Option Kind Numbers").
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMPS = 8
_KNOWN = frozenset(
    {OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_PERMITTED, OPT_SACK, OPT_TIMESTAMPS}
)
_FIXED_LENGTH = {OPT_MSS: 4, OPT_WSCALE: 3, OPT_SACK_PERMITTED: 2, OPT_TIMESTAMPS: 10}
_MAX_OPTIONS = 40  # data offset is 4 bits: at most 60 header bytes

_U16 = struct.Struct(">H")
_U32x2 = struct.Struct(">II")
_MSS = struct.Struct(">BBH")
_NOP_NOP_TS = bytes((OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10))
_TS_AFTER_2 = struct.Struct(">BBBBII")  # two bytes (NOP NOP or SACK-permitted), then TS


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

    @classmethod
    def parse(cls, data: bytes) -> TcpOptions:
        """Decode the options area (the header bytes after the fixed 20); raises WireError."""
        if len(data) == 12 and data[:4] == _NOP_NOP_TS:
            # The layout of nearly every segment once timestamps are on (RFC 7323 Appendix A).
            return cls(timestamps=_U32x2.unpack_from(data, 4))
        mss = window_scale = timestamps = None
        sack_permitted = False
        sack_blocks: tuple[tuple[SeqNum, SeqNum], ...] = ()
        unknown: list[tuple[int, bytes]] = []
        n = len(data)
        i = 0
        while i < n:
            kind = data[i]
            if kind == OPT_EOL:
                break  # RFC 9293 3.2: the rest is padding
            if kind == OPT_NOP:
                i += 1
                continue
            if i + 1 >= n:
                raise WireError(f"TCP option kind {kind} has no length byte")
            length = data[i + 1]
            if length < 2:
                raise WireError(f"TCP option kind {kind} has length {length} (< 2)")
            end = i + length
            if end > n:
                raise WireError(f"TCP option kind {kind} (length {length}) overruns the header")
            want = _FIXED_LENGTH.get(kind)
            if want is not None and length != want:
                raise WireError(f"TCP option kind {kind} must have length {want}, not {length}")
            if kind == OPT_MSS:
                mss = _U16.unpack_from(data, i + 2)[0]
            elif kind == OPT_WSCALE:
                window_scale = data[i + 2]
            elif kind == OPT_SACK_PERMITTED:
                sack_permitted = True
            elif kind == OPT_TIMESTAMPS:
                timestamps = _U32x2.unpack_from(data, i + 2)
            elif kind == OPT_SACK:
                if length < 10 or (length - 2) % 8:
                    raise WireError(f"TCP SACK option length {length} is not 2 + 8n (n >= 1)")
                sack_blocks = tuple(
                    (SeqNum(left), SeqNum(right))
                    for left, right in _U32x2.iter_unpack(data[i + 2 : end])
                )
            else:
                unknown.append((kind, bytes(data[i + 2 : end])))
            i = end
        return cls(mss, window_scale, sack_permitted, sack_blocks, timestamps, tuple(unknown))

    def build(self) -> bytes:
        """The options area, padded to a multiple of 4 bytes; ValueError if it cannot fit.

        Layout (like Linux): MSS; SACK-permitted + timestamps or each behind two NOPs;
        NOP + window scale; NOP NOP + SACK blocks; unknown kinds; EOL padding.
        """
        out = bytearray()
        try:
            if self.mss is not None:
                out += _MSS.pack(OPT_MSS, 4, self.mss)
            if self.timestamps is not None:
                tsval, tsecr = self.timestamps
                if self.sack_permitted:
                    out += _TS_AFTER_2.pack(OPT_SACK_PERMITTED, 2, OPT_TIMESTAMPS, 10, tsval, tsecr)
                else:
                    out += _TS_AFTER_2.pack(OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10, tsval, tsecr)
            elif self.sack_permitted:
                out += bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2))
            if self.window_scale is not None:
                out += bytes((OPT_NOP, OPT_WSCALE, 3, self.window_scale))
            if self.sack_blocks:
                out += bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(self.sack_blocks)))
                for left, right in self.sack_blocks:
                    out += _U32x2.pack(left.value, right.value)
            for kind, data in self.unknown:
                if kind in _KNOWN or not 0 <= kind <= 255:
                    raise ValueError(f"option kind {kind} cannot be carried as unknown")
                out += bytes((kind, 2 + len(data)))
                out += data
        except (struct.error, ValueError) as e:
            raise ValueError(f"cannot build TCP options {self!r}: {e}") from e
        if len(out) > _MAX_OPTIONS:
            raise ValueError(f"TCP options need {len(out)} bytes; at most 40 fit")
        out += bytes(-len(out) % 4)  # EOL, then zero padding (RFC 9293 3.2)
        return bytes(out)


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
    ecn: Ecn = Ecn.NOT_ECT  # the IP header's ECN field, in or out (module docstring)

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one for SYN and one for FIN (RFC 9293 3.4)."""
        return len(self.payload) + bool(self.flags & TcpFlags.SYN) + bool(self.flags & TcpFlags.FIN)

    @classmethod
    def parse(
        cls,
        data: bytes | bytearray | memoryview,
        src: Address,
        dst: Address,
        *,
        verify: bool = True,
        ecn: int = 0,
    ) -> TcpSegment:
        """Validate and decode a segment (the IP payload) sent from ``src`` to ``dst``.

        Checks the data offset and the checksum over the pseudo-header (RFC 9293 3.1),
        then the options. Raises WireError and nothing else. ``verify=False`` skips the
        checksum, for a packet whose link vouched for it (``userstack.wire.offload``:
        the kernel checked it, or it never left this machine). ``ecn``: the ECN field of
        the IP header it came in (the low two bits of the TOS byte or traffic class).
        """
        n = len(data)
        if n < 20:
            raise WireError(f"TCP segment too short for a header: {n} bytes")
        sport, dport, seq, ack, offset, flags, window, _, urgent = _HDR.unpack_from(data)
        hlen = (offset >> 4) << 2
        if hlen < 20:
            raise WireError(f"TCP data offset {hlen >> 2} is below the minimum of 5")
        if hlen > n:
            raise WireError(f"TCP data offset {hlen >> 2} runs past the {n}-byte segment")
        if verify and ones_complement_sum(
            data, pseudo_header_sum(src, dst, _IPPROTO_TCP, n)
        ) != 0xFFFF:
            raise WireError("bad TCP checksum")
        return cls(
            sport,
            dport,
            SeqNum(seq),
            SeqNum(ack),
            _FLAGS[flags],
            window,
            TcpOptions.parse(data[20:hlen]) if hlen > 20 else NO_OPTIONS,
            bytes(data[hlen:]),
            urgent,
            _ECN[ecn & 3],
        )

    def build(self, src: Address, dst: Address) -> bytes:
        """Header + options + payload from ``src`` to ``dst``, checksum filled in.

        Raises ValueError if a field does not fit its header field.
        """
        options = b"" if self.options is NO_OPTIONS else self.options.build()
        payload = self.payload
        hlen = 20 + len(options)
        sport, dport, seq, ack = self.src_port, self.dst_port, self.seq.value, self.ack.value
        flags, window, urgent = self.flags, self.window, self.urgent
        # The checksum over the pseudo-header and the header summed from its fields (see
        # checksum.py), the options, then the payload: no second pass over packed bytes.
        words = pseudo_header_sum(src, dst, _IPPROTO_TCP, hlen + len(payload))
        words += sport + dport + seq + ack + (hlen << 10) + flags + window + urgent
        if options:
            words += int.from_bytes(options, "big")
        return self._header(options, internet_checksum(payload, words)) + payload

    def build_header_partial(self, src: Address, dst: Address) -> bytes:
        """Header + options only, for checksum offload: the checksum field holds the
        folded pseudo-header sum over the whole segment's length, as virtio's NEEDS_CSUM
        expects (the link sums the header and payload on top of it, and stores the
        complement). No pass over the payload. Raises ValueError like ``build``."""
        options = b"" if self.options is NO_OPTIONS else self.options.build()
        length = 20 + len(options) + len(self.payload)
        partial = ones_complement_sum(b"", pseudo_header_sum(src, dst, _IPPROTO_TCP, length))
        return self._header(options, partial)

    def _header(self, options: bytes, checksum: int) -> bytes:
        hlen = 20 + len(options)
        try:
            header = _HDR.pack(
                self.src_port, self.dst_port, self.seq.value, self.ack.value, hlen << 2,
                self.flags, self.window, checksum, self.urgent,
            )  # hlen << 2: the data offset in words, in the top 4 bits of its byte
        except struct.error as e:
            raise ValueError(f"cannot build TCP segment {self!r}: {e}") from e
        return header + options if options else header
