"""The virtio-net header: what a TUN opened with IFF_VNET_HDR puts before every packet.

With IFF_VNET_HDR every read from the TUN starts with a ``struct virtio_net_hdr`` (Linux
``include/uapi/linux/virtio_net.h``) and every write must start with one. It is how the
kernel and a user-space NIC agree on the two offloads that matter for speed:

- checksum offload: ``flags`` NEEDS_CSUM says the packet's checksum field holds only the
  pseudo-header sum, and the one's complement sum from ``csum_start`` to the end is still
  to be stored at ``csum_start + csum_offset`` (for TCP over IPv4: the IP header length
  and 16). DATA_VALID, on a read, says the kernel already checked the checksum.
- segmentation offload (TSO/GSO): ``gso_type`` TCPV4 (TCPV6 for IPv6) with ``gso_size`` =
  MSS says the packet is a super-segment of up to 64 KB, to be cut into ``gso_size`` pieces
  (by the kernel, on a write; on a read it is the kernel's own unsegmented GSO packet).
  ``hdr_len`` is the length of the IP and TCP headers that each piece repeats.

The fields are little-endian: a TUN uses the legacy virtio layout, in the CPU's byte
order unless TUNSETVNETBE says otherwise, and every CPU this runs on is little-endian.
The header is 10 bytes (TUNSETVNETHDRSZ sets that size; 12 adds ``num_buffers``,
which a TUN does not use).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from construct import Int8ul, Int16ul, Struct

from ._layout import Layout
from .errors import WireError

VIRTIO_NET_HDR = Layout(
    Struct(
        "flags" / Int8ul,
        "gso_type" / Int8ul,
        "hdr_len" / Int16ul,  # bytes of headers (IP + TCP) before the payload
        "gso_size" / Int16ul,  # payload bytes per segment (the MSS) when gso_type is set
        "csum_start" / Int16ul,  # where the checksummed part starts (the TCP header)
        "csum_offset" / Int16ul,  # where in it the checksum field is (16 for TCP)
    )
)
_HDR = VIRTIO_NET_HDR.fast
VIRTIO_NET_HDR_SIZE = VIRTIO_NET_HDR.size  # 10

TCP_CSUM_OFFSET = 16  # the TCP checksum field, from the start of the TCP header


class VirtioFlags(IntFlag):
    NONE = 0
    NEEDS_CSUM = 1  # VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum is left to be completed
    DATA_VALID = 2  # VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified (reads only)
    RSC_INFO = 4  # VIRTIO_NET_HDR_F_RSC_INFO: coalescing statistics (never from a TUN)


class GsoType(IntEnum):
    NONE = 0  # VIRTIO_NET_HDR_GSO_NONE: one packet, no segmentation
    TCPV4 = 1
    UDP = 3  # UFO, which this stack neither asks for nor sends
    TCPV6 = 4
    UDP_L4 = 5


GSO_ECN = 0x80  # VIRTIO_NET_HDR_GSO_ECN, or'ed into gso_type: the segments carry CWR/ECE
_FLAG_MASK = int(VirtioFlags.NEEDS_CSUM | VirtioFlags.DATA_VALID | VirtioFlags.RSC_INFO)
_GSO_TYPES = {int(t): t for t in GsoType}


@dataclass(frozen=True, slots=True)
class VirtioNetHdr:
    """One virtio-net header; parse and build raise WireError / ValueError only."""

    flags: VirtioFlags = VirtioFlags.NONE
    gso_type: GsoType = GsoType.NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0
    ecn: bool = False  # the GSO_ECN bit of gso_type

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> VirtioNetHdr:
        """The header at the start of ``data`` (the packet follows it)."""
        if len(data) < VIRTIO_NET_HDR_SIZE:
            raise WireError(f"virtio-net header needs 10 bytes, got {len(data)}")
        flags, gso, hdr_len, gso_size, csum_start, csum_offset = _HDR.unpack_from(data)
        if flags & ~_FLAG_MASK:
            raise WireError(f"unknown virtio-net header flags 0x{flags:02x}")
        gso_type = _GSO_TYPES.get(gso & ~GSO_ECN)
        if gso_type is None:
            raise WireError(f"unknown virtio-net gso_type {gso}")
        return cls(
            VirtioFlags(flags), gso_type, hdr_len, gso_size, csum_start, csum_offset,
            bool(gso & GSO_ECN),
        )

    def build(self) -> bytes:
        gso = int(self.gso_type) | (GSO_ECN if self.ecn else 0)
        try:
            return _HDR.pack(
                int(self.flags), gso, self.hdr_len, self.gso_size, self.csum_start,
                self.csum_offset,
            )
        except struct.error as e:
            raise ValueError(f"cannot build virtio-net header {self!r}: {e}") from e


NO_VIRTIO_OFFLOAD = bytes(VIRTIO_NET_HDR_SIZE)  # a header asking for nothing: a plain packet


def tcp_virtio_header(
    ip_header_len: int, tcp_header_len: int, gso_size: int, *, ipv6: bool = False,
    cwr: bool = False,
) -> bytes:
    """The header in front of a TCP packet whose checksum is left to the kernel
    (NEEDS_CSUM), and, when ``gso_size`` is not 0, which the kernel cuts into
    ``gso_size``-byte segments (TCPV4, or TCPV6 for an IPv6 packet; with GSO_ECN when
    ``cwr``: the first piece keeps CWR, RFC 3168 6.1.2). The hot path's one call: a
    single struct pack."""
    gso_type = GsoType.TCPV6 if ipv6 else GsoType.TCPV4
    return _HDR.pack(
        VirtioFlags.NEEDS_CSUM,
        (gso_type | (GSO_ECN if cwr else 0)) if gso_size else GsoType.NONE,
        ip_header_len + tcp_header_len,
        gso_size,
        ip_header_len,
        TCP_CSUM_OFFSET,
    )
