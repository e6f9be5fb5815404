"""The packets that cross a link when checksum and segmentation offload are on.

Python pays per packet (about 25 us for a full-sized segment through the whole stack),
so the fast way through a TUN is the one the kernel uses towards a NIC: hand over one
TCP super-segment of up to 64 KB and let the other side cut it into MSS-sized packets
and fill in their checksums (TSO/GSO), and take the super-segments it hands up without
summing them again. This module is those packets; the virtio-net header that carries
their metadata over a TUN is ``userstack.wire.virtio``.

Send: ``OffloadedPacket`` is an IPv4/TCP packet (or an IPv6/TCP one without extension
headers, TSO6) held as two pieces, the headers and the payload, so a link can ``writev``
them without concatenating 64 KB. Its TCP checksum
field holds the pseudo-header sum only (virtio NEEDS_CSUM). ``gso_size`` is the MSS the
link cuts it at, or 0 for a packet that only leaves its checksum to the link (worth it
for every TCP packet: the software checksum is 3 us of the 25). ``complete()`` is the
same packet with its real checksum (for pcap, trace and links that cannot offload);
``segments()`` is what the kernel's GSO makes of it: MSS-sized packets with correct
checksums, consecutive IP ids, FIN and PSH only on the last piece, CWR only on the first.

Receive: a link whose far side vouches for a packet's checksum (the kernel verified it,
virtio DATA_VALID; or it never left this machine and only the pseudo-header sum is there,
NEEDS_CSUM) hands the packet up as a ``Vouched`` ``bytes``, so a batch stays a
``list[bytes]`` and the stack tells them apart with one type test, then skips the TCP
checksum for them only (``TcpSegment.parse(..., verify=False)``). Every other packet is
verified as before. ``completed()`` fills the real checksum into a ``PartialChecksum``
packet for a pcap or a trace, which must show what a checker would accept.

``OffloadCapability`` is what a link says it can take; a link that cannot segment never
receives an ``OffloadedPacket`` with a ``gso_size``, one that cannot checksum never
receives one at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .checksum import Address, internet_checksum
from .ipv4 import IPPROTO_TCP, IPV4_HEADER, ipv4_header
from .ipv6 import IPV6_HEADER, ipv6_header
from .packet import build_tcp6_packet, build_tcp_packet
from .tcp import TcpFlags, TcpSegment
from .virtio import TCP_CSUM_OFFSET, tcp_virtio_header

MAX_IPV4_PACKET = 0xFFFF  # the IPv4 total length field: a super-segment's upper bound
IPV6_HEADER_LEN = 40  # the fixed header; an offloaded IPv6 packet has no extension headers
_LAST_ONLY = TcpFlags.FIN | TcpFlags.PSH  # what the kernel's GSO keeps for the last piece
_FIRST_ONLY = TcpFlags.CWR  # and for the first


@dataclass(frozen=True, slots=True)
class OffloadCapability:
    """What a link can do for the stack (``Link.offload``).

    ``checksum``: it takes TCP packets whose checksum field holds the pseudo-header sum
    (``OffloadedPacket``) and completes them. ``segmentation``: it also takes
    super-segments (``gso_size`` set) up to ``max_packet`` bytes of IPv4 packet and cuts
    them. Both hold for IPv4 and IPv6 packets alike (TSO4, TSO6). A link with neither
    gets only plain ``bytes``.
    """

    checksum: bool = False
    segmentation: bool = False
    max_packet: int = MAX_IPV4_PACKET

    def __post_init__(self) -> None:
        if self.segmentation and not self.checksum:
            raise ValueError("segmentation offload needs checksum offload (as in Linux)")
        if not 576 <= self.max_packet <= MAX_IPV4_PACKET:
            raise ValueError(f"max_packet {self.max_packet} is not in [576, 65535]")


NO_OFFLOAD = OffloadCapability()
CHECKSUM_OFFLOAD = OffloadCapability(checksum=True)
TSO = OffloadCapability(checksum=True, segmentation=True)


@dataclass(frozen=True, slots=True)
class OffloadedPacket:
    """An IPv4/TCP or IPv6/TCP packet (or super-segment) whose checksum is left to the link."""

    header: bytes  # the IP and TCP headers; the TCP checksum field is the pseudo-header sum
    payload: bytes | memoryview  # the TCP payload, kept apart for writev
    gso_size: int  # the MSS the link cuts the payload at, 0 for a single packet
    ip_header_len: int = 20

    @classmethod
    def from_segment(
        cls,
        src: Address,
        dst: Address,
        seg: TcpSegment,
        *,
        gso_size: int = 0,
        ttl: int = 64,
        tos: int = 0,
        identification: int = 0,
    ) -> OffloadedPacket:
        """``seg`` from ``src`` to ``dst`` without a pass over its payload. ``gso_size``
        is set only when the payload is longer than it (else it is one packet). The ECN
        bits of the TOS byte are the segment's (``seg.ecn``)."""
        tcp = seg.build_header_partial(src, dst)
        payload = seg.payload
        ip = ipv4_header(
            src, dst, IPPROTO_TCP, len(tcp) + len(payload), ttl=ttl, tos=tos | seg.ecn,
            identification=identification,
        )
        return cls(ip + tcp, payload, gso_size if len(payload) > gso_size > 0 else 0)

    @classmethod
    def from_segment6(
        cls,
        src: Address,
        dst: Address,
        seg: TcpSegment,
        *,
        gso_size: int = 0,
        hop_limit: int = 64,
        traffic_class: int = 0,
        flow_label: int = 0,
    ) -> OffloadedPacket:
        """``seg`` in an IPv6 packet, as ``from_segment`` makes an IPv4 one (TSO6); the
        ECN bits of the traffic class are the segment's (``seg.ecn``)."""
        tcp = seg.build_header_partial(src, dst)
        payload = seg.payload
        ip = ipv6_header(
            src, dst, IPPROTO_TCP, len(tcp) + len(payload), hop_limit=hop_limit,
            traffic_class=traffic_class | seg.ecn, flow_label=flow_label,
        )
        gso = gso_size if len(payload) > gso_size > 0 else 0
        return cls(ip + tcp, payload, gso, IPV6_HEADER_LEN)

    @property
    def ipv6(self) -> bool:
        return self.header[0] >> 4 == 6

    def __len__(self) -> int:
        """The IP packet's length, headers included (for IPv4 its total length): what
        tcpdump prints on a TSO interface."""
        return len(self.header) + len(self.payload)

    def __bytes__(self) -> bytes:
        return self.complete()

    @property
    def virtio_header(self) -> bytes:
        """The virtio-net header a TUN needs in front of this packet."""
        ihl = self.ip_header_len
        # a super-segment with CWR says so (GSO_ECN), as Linux's own TSO does (SKB_GSO_TCP_ECN)
        cwr = bool(self.gso_size and self.header[ihl + 13] & TcpFlags.CWR)
        return tcp_virtio_header(
            ihl, len(self.header) - ihl, self.gso_size, ipv6=self.ipv6, cwr=cwr
        )

    def complete(self) -> bytes:
        """The same packet with its TCP checksum filled in (the payload is copied once)."""
        return _fill_checksum(bytearray(self.header), self.ip_header_len, self.payload)

    def segments(self) -> list[bytes]:
        """What the kernel's GSO makes of this packet: pieces of ``gso_size`` bytes (the
        last one shorter), each a complete IP/TCP packet with correct checksums (IPv4
        ones with consecutive IP ids)."""
        if not self.gso_size:
            return [self.complete()]
        ihl = self.ip_header_len
        fields = self._ip_fields()
        src, dst = fields["src"], fields["dst"]
        first = TcpSegment.parse(self.header[ihl:], src, dst, verify=False)
        payload, size = self.payload, self.gso_size
        starts = range(0, len(payload), size)
        last = starts[-1]
        pieces = []
        for i, start in enumerate(starts):
            flags = first.flags
            if start != last:
                flags &= ~_LAST_ONLY
            if i:
                flags &= ~_FIRST_ONLY
            chunk = bytes(payload[start : start + size])
            piece = replace(first, seq=first.seq + start, flags=flags, payload=chunk)
            if self.ipv6:
                pieces.append(build_tcp6_packet(
                    src, dst, piece, hop_limit=fields["hop_limit"],
                    traffic_class=fields["traffic_class"], flow_label=fields["flow_label"],
                ))
                continue
            pieces.append(build_tcp_packet(
                src, dst, piece, ttl=fields["ttl"], tos=fields["tos"],
                identification=(fields["identification"] + i) & 0xFFFF,
            ))
        return pieces

    def _ip_fields(self) -> dict[str, int]:
        """The IP header's fields by name; for IPv6, with its addresses as ``src`` and
        ``dst`` and its first word split into traffic class and flow label."""
        if not self.ipv6:
            values = IPV4_HEADER.fast.unpack_from(self.header)
            return dict(zip(IPV4_HEADER.names, values, strict=True))
        first, _, _, hop_limit, src_hi, src_lo, dst_hi, dst_lo = IPV6_HEADER.fast.unpack_from(
            self.header
        )
        return {
            "src": src_hi << 64 | src_lo, "dst": dst_hi << 64 | dst_lo, "hop_limit": hop_limit,
            "traffic_class": first >> 20 & 0xFF, "flow_label": first & 0xFFFFF,
        }


class Vouched(bytes):
    """An IP packet whose TCP checksum its link vouches for: the stack does not verify it.

    Never made for a packet of another protocol (the link completes those itself)."""


class PartialChecksum(Vouched):
    """Its TCP checksum field holds only the pseudo-header sum (virtio NEEDS_CSUM): the
    packet never crossed a wire, so there is nothing to verify."""


class ValidChecksum(Vouched):
    """Its TCP checksum is complete and was verified by the kernel (virtio DATA_VALID)."""


class SuperSegment(PartialChecksum):
    """A TCP super-segment handed up whole (virtio gso_type TCPV4 or TCPV6): the far side's
    TSO or GSO packet, longer than one MSS, with a partial checksum."""


def completed(packet: bytes) -> bytes:
    """``packet`` as a checker would see it: a ``PartialChecksum`` packet gets its real
    TCP checksum (a copy; for pcap and trace), any other is returned as it is."""
    if not isinstance(packet, PartialChecksum):
        return packet
    ihl = IPV6_HEADER_LEN if packet[0] >> 4 == 6 else (packet[0] & 0xF) << 2
    tcp_header_len = (packet[ihl + 12] >> 4) << 2
    end = ihl + tcp_header_len
    return _fill_checksum(bytearray(packet[:end]), ihl, memoryview(packet)[end:])


LinkPacket = bytes | OffloadedPacket  # what a link's send_batch takes


def link_packet_bytes(packet: LinkPacket) -> bytes:
    """Whatever a link carries, as the complete IPv4 packet it stands for."""
    return packet.complete() if type(packet) is OffloadedPacket else completed(packet)


def delivered(packets: Iterable[LinkPacket], *, whole: bool) -> list[bytes]:
    """What the far side of an offloading link hands up for ``packets``: with ``whole``, a
    super-segment as one ``SuperSegment`` and a single offloaded packet as one
    ``PartialChecksum`` (both copied once, into one ``bytes``), as a kernel does between two
    of its own sockets; without, the packets the kernel's GSO would put on a wire to a peer
    that takes no super-segments (``segments()``). Plain packets pass unchanged."""
    out: list[bytes] = []
    for packet in packets:
        if type(packet) is not OffloadedPacket:
            out.append(packet)
        elif not whole:
            out.extend(packet.segments())
        elif packet.gso_size:
            out.append(SuperSegment(packet.header + packet.payload))
        else:
            out.append(PartialChecksum(packet.header + packet.payload))
    return out


def _fill_checksum(header: bytearray, ihl: int, payload: bytes | memoryview) -> bytes:
    """Complete a NEEDS_CSUM checksum: the one's complement sum of everything from the TCP
    header on, partial pseudo-header sum in the field included, complemented, into the field."""
    at = ihl + TCP_CSUM_OFFSET
    if len(header) < at + 2:
        return bytes(header) + payload  # too short to be TCP: a fault's work, left as it is
    partial = int.from_bytes(header[ihl:], "big")
    header[at:at + 2] = internet_checksum(payload, partial).to_bytes(2, "big")
    return bytes(header) + payload


