"""The real link: a Linux TUN device (IFF_TUN | IFF_NO_PI), the only place pytun is used.

The kernel routes the device's subnet into the TUN; every read is one IP packet the kernel sends
to the stack, every write one packet the kernel receives from it. The fd is non-blocking: after a
wake-up from `trio.lowlevel.wait_readable` we read until EAGAIN and hand the whole batch up, since
one read per wake-up would cost a trip through the scheduler per packet. Writes go straight out
with `os.write`; only on EAGAIN do we wait for `wait_writable`.

The TUN carries both families. With `host_addr6` ("fd00::1/64") the kernel gets an IPv6 address
too, usable at once (duplicate address detection is off: the stack at the far end answers no
neighbour solicitation, a TUN having no link layer). The kernel then also sends what it sends on
any IPv6 interface, router solicitations and MLD reports; the stack counts and drops those.
Without `host_addr6`, IPv6 is switched off on the device (`disable_ipv6`), which stops that
chatter at the source. Anything neither IPv4 nor IPv6 is dropped here and counted in
`stats.rx_not_ip`, never passed up. A write the
kernel refuses as malformed (EINVAL: e.g. a corrupted version nibble from a FaultyLink) is
dropped and counted in `stats.tx_rejected`, as the peer's problem, not the driver's.

Closing the fd removes the device (it is not persistent), with its address and routes.

Offload (on by default, `offload=False` to refuse it). The device is opened with IFF_VNET_HDR,
so every packet each way starts with a 10-byte virtio-net header (userstack/wire/virtio.py), and
TUNSETOFFLOAD with TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 tells the kernel that this "NIC"
checksums and segments in hardware, for both families. Then:
- the kernel hands up its TCP segments unsegmented (up to 64 KB) and unchecksummed (NEEDS_CSUM:
  only the pseudo-header sum is filled in); they come up as `Vouched` bytes
  (userstack/wire/offload.py), so the stack skips the checksum it could not verify anyway. A
  non-TCP packet marked NEEDS_CSUM (UDP) has its checksum completed here instead;
- the stack may write an `OffloadedPacket`: its header and payload go out with one `os.writev`
  behind its virtio-net header, and the kernel completes the checksum and, for a super-segment,
  cuts it into `gso_size` pieces.
IPv6 packets are offloaded as IPv4's are (gso_type TCPV6), those with extension headers
excepted: the kernel's TSO6 packets have none, and one that has some with NEEDS_CSUM gets its
checksum completed here. (A kernel that refuses TUN_F_TSO6 gets TSO4 only: it then cuts its
IPv6 segments before they come up, and still takes ours whole, since the flags say what the
kernel may hand to the "NIC", not what the NIC may hand to the kernel.)
`offload` says which (`OffloadCapability`). A kernel that refuses IFF_VNET_HDR or TUNSETOFFLOAD
gets a plain device instead: one line on stderr, `stats.offload_refused` counts it.
Reads go into one preallocated buffer (`os.readv`), so a 64 KB super-segment is copied once,
into the `bytes` handed up.

Queues (IFF_MULTI_QUEUE): `create(..., queues=N)` makes a multi-queue device and returns its
queue 0; `open_queue()` attaches one more queue of that device (another fd, opened with the
same flags: the kernel applies the latest opener's to the whole device), up to N in all.
The kernel steers each flow to one queue: by the queue that last transmitted the flow if it
has one on record (it records one for each flow a queue writes, for a few seconds), else by the
flow's hash. `from_fd` wraps a queue fd another process opened (a worker in
userstack.workers). The device lives while any queue's fd is open, in any process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface

import pytun
import trio

from userstack.link.base import LinkBase
from userstack.wire.checksum import internet_checksum
from userstack.wire.offload import (
    NO_OFFLOAD,
    TSO,
    LinkPacket,
    OffloadCapability,
    OffloadedPacket,
    PartialChecksum,
    SuperSegment,
    ValidChecksum,
    link_packet_bytes,
)
from userstack.wire.virtio import (
    NO_VIRTIO_OFFLOAD,
    TCP_CSUM_OFFSET,
    VIRTIO_NET_HDR,
    VIRTIO_NET_HDR_SIZE,
    VirtioFlags,
)

DEFAULT_NAME = "userstack%d"  # the kernel fills in %d with the first free number
DEFAULT_MTU = 1500
_MAX_BATCH = 256  # reads per wake-up, so a flood cannot starve the rest of the driver
_READ_SIZE = 65535  # larger than any MTU: a short buffer would silently truncate a packet

# From Linux include/uapi/linux/if_tun.h: _IOW('T', 208, unsigned int), _IOW('T', 216, int).
_TUNSETOFFLOAD = 0x400454D0
_TUNSETVNETHDRSZ = 0x400454D8
_TUN_F_CSUM = 0x01  # we take packets with NEEDS_CSUM, and the kernel takes ours
_TUN_F_TSO4 = 0x02  # and TCP/IPv4 super-segments (needs TUN_F_CSUM)
_TUN_F_TSO6 = 0x04  # and TCP/IPv6 ones
_NEEDS_CSUM, _DATA_VALID = int(VirtioFlags.NEEDS_CSUM), int(VirtioFlags.DATA_VALID)
_IPPROTO_TCP = 6
_IPV6_HEADER_LEN = 40


@dataclass(slots=True)
class TunStats:
    rx_packets: int = 0  # IPv4 and IPv6 packets passed up
    rx_not_ip: int = 0  # dropped: neither IPv4 nor IPv6
    rx_super_segments: int = 0  # of rx_packets: the kernel's unsegmented TCP (gso_type set)
    tx_packets: int = 0  # written to the kernel
    tx_super_segments: int = 0  # of tx_packets: ours, for the kernel to segment
    tx_rejected: int = 0  # the kernel refused them as malformed (EINVAL)
    offload_refused: int = 0  # 1 if offload was asked for and the kernel said no


class TunLink(LinkBase):
    """A TUN device as a Link. Make one with `TunLink.create(...)`; `aclose()` removes it."""

    def __init__(
        self,
        device: pytun.TunTapDevice | _InheritedQueue,
        mtu: int,
        offload: OffloadCapability = NO_OFFLOAD,
        *,
        multi_queue: bool = False,
    ) -> None:
        super().__init__()
        self.multi_queue = multi_queue
        self._device = device
        self._fd: int = device.fileno()
        self.name: str = device.name
        self.mtu = mtu
        self.offload = offload
        self.stats = TunStats()
        self._vnet = offload is not NO_OFFLOAD  # every packet behind a virtio-net header
        self._buffer = bytearray(VIRTIO_NET_HDR_SIZE + _READ_SIZE)
        self._view = memoryview(self._buffer)

    @classmethod
    def create(
        cls,
        name: str = DEFAULT_NAME,
        *,
        host_addr: str | IPv4Interface | None = "10.0.0.1/24",
        host_addr6: str | IPv6Interface | None = None,
        mtu: int = DEFAULT_MTU,
        disable_ipv6: bool | None = None,
        offload: bool = True,
        queues: int = 1,
    ) -> TunLink:
        """Create the device in the calling thread's network namespace and bring it up.

        `host_addr` is the kernel's side ("10.0.0.1/24": the kernel is 10.0.0.1 and routes the
        rest of 10.0.0.0/24 into the TUN, where the stack answers); None leaves it unaddressed.
        `host_addr6` is the kernel's IPv6 side ("fd00::1/64"). `disable_ipv6` (default: when
        there is no `host_addr6`) switches IPv6 off on the device.
        `offload`: ask for checksum and segmentation offload (see the module docstring).
        `queues` > 1 makes it multi-queue: this link is queue 0, `open_queue()` adds the others.
        """
        if queues < 1:
            raise ValueError(f"a TUN device has at least one queue, not {queues}")
        multi_queue = queues > 1
        if disable_ipv6 is None:
            disable_ipv6 = host_addr6 is None
        capability, refused = NO_OFFLOAD, False
        if offload:
            try:
                device = _open_device(name, vnet=True, multi_queue=multi_queue)
                capability = TSO
            except (OSError, pytun.Error) as exc:
                print(f"userstack: TUN offload refused ({exc}); without it", file=sys.stderr)
                refused = True
        if capability is NO_OFFLOAD:
            device = _open_device(name, vnet=False, multi_queue=multi_queue)
        try:
            if disable_ipv6:
                _disable_ipv6(device.name)  # before up: no router solicitation, no MLD
            elif host_addr6 is not None:
                _ipv6_knob(device.name, "accept_dad", "0")  # usable at once: nobody answers DAD
            if host_addr is not None:
                interface = IPv4Interface(host_addr)
                device.addr = str(interface.ip)
                device.netmask = str(interface.netmask)
            device.mtu = mtu
            device.up()
            if host_addr6 is not None and not disable_ipv6:
                _add_ipv6_address(device.name, IPv6Interface(host_addr6))
        except BaseException:
            device.close()
            raise
        link = cls(device, mtu, capability, multi_queue=multi_queue)
        link.stats.offload_refused = int(refused)
        return link

    def open_queue(self) -> TunLink:
        """Attach one more queue of this multi-queue device: a new fd the kernel steers flows to."""
        self._check_open()
        if not self.multi_queue:
            raise ValueError(f"{self.name} is single-queue: create it with queues=N")
        device = _open_device(self.name, vnet=self._vnet, multi_queue=True)
        return TunLink(device, self.mtu, self.offload, multi_queue=True)

    def fileno(self) -> int:
        """The queue's fd, to hand to a worker process (`pass_fds`; see `from_fd`)."""
        return self._fd

    @classmethod
    def from_fd(
        cls, fd: int, name: str, mtu: int = DEFAULT_MTU, offload: OffloadCapability = NO_OFFLOAD
    ) -> TunLink:
        """A queue of device `name` whose fd this process inherited (`offload`: what the
        device was opened with); `aclose()` closes it."""
        os.set_blocking(fd, False)
        return cls(_InheritedQueue(fd, name), mtu, offload, multi_queue=True)

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        self._check_open()
        fd, stats, vnet = self._fd, self.stats, self._vnet
        writev, write = os.writev, os.write
        for packet in packets:
            if type(packet) is OffloadedPacket:
                if not vnet:  # a wrapper's mistake; the stack never sends one here
                    packet = link_packet_bytes(packet)
                elif packet.gso_size:
                    stats.tx_super_segments += 1
            while True:
                try:
                    if not vnet:
                        write(fd, packet)
                    elif type(packet) is OffloadedPacket:
                        writev(fd, (packet.virtio_header, packet.header, packet.payload))
                    else:
                        writev(fd, (NO_VIRTIO_OFFLOAD, packet))
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(fd)
                    continue
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    stats.tx_rejected += 1
                    break
                stats.tx_packets += 1
                break
        await trio.lowlevel.checkpoint()

    async def _receive_batch(self) -> list[bytes]:
        batch = self._drain()
        if batch:
            await trio.lowlevel.checkpoint()
            return batch
        while not batch:
            await trio.lowlevel.wait_readable(self._fd)
            batch = self._drain()
        return batch

    def _drain(self) -> list[bytes]:
        """Read until EAGAIN (or _MAX_BATCH packets) into the one buffer; keep only IPv4 and
        IPv6."""
        fd, readv, buffers, view = self._fd, os.readv, [self._buffer], self._view
        start = VIRTIO_NET_HDR_SIZE if self._vnet else 0
        batch: list[bytes] = []
        not_ip = 0
        for _ in range(_MAX_BATCH):
            try:
                n = readv(fd, buffers)
            except BlockingIOError:
                break
            if n <= start or view[start] >> 4 not in (4, 6):
                not_ip += 1
            elif start:
                batch.append(self._unwrap(n))
            else:
                batch.append(bytes(view[:n]))
        self.stats.rx_packets += len(batch)
        self.stats.rx_not_ip += not_ip
        return batch

    def _unwrap(self, n: int) -> bytes:
        """The IP packet behind the virtio-net header in the buffer's first `n` bytes,
        marked for the stack by what the header says about its TCP checksum. An IPv6
        packet is marked only with TCP right after its fixed header (no extension
        headers), as the kernel's TSO6 packets are."""
        view = self._view
        flags, gso_type, _, _, csum_start, csum_offset = _VNET.unpack_from(view)
        packet = view[VIRTIO_NET_HDR_SIZE:n]
        if packet[0] >> 4 == 6:
            ihl, tcp = _IPV6_HEADER_LEN, packet[6] == _IPPROTO_TCP
        else:
            ihl, tcp = (packet[0] & 0xF) << 2, packet[9] == _IPPROTO_TCP
        if flags & _NEEDS_CSUM:
            if tcp and csum_start == ihl and csum_offset == TCP_CSUM_OFFSET:
                if gso_type:
                    self.stats.rx_super_segments += 1
                    return SuperSegment(packet)
                return PartialChecksum(packet)
            return _complete_checksum(packet, csum_start, csum_offset)
        if flags & _DATA_VALID and tcp:
            return ValidChecksum(packet)
        return bytes(packet)

    async def _aclose(self) -> None:
        trio.lowlevel.notify_closing(self._fd)  # a task blocked in receive gets ClosedResourceError
        self._device.close()
        await trio.lowlevel.checkpoint()


_VNET = VIRTIO_NET_HDR.fast


def _open_device(name: str, *, vnet: bool, multi_queue: bool) -> pytun.TunTapDevice:
    """One fd on the device: TUNSETIFF creates it, or attaches one more queue of a multi-queue
    one. `vnet`: with virtio-net headers, 10 bytes each, and TSO/checksum offload switched on."""
    flags = pytun.IFF_TUN | pytun.IFF_NO_PI
    flags |= (pytun.IFF_VNET_HDR if vnet else 0) | (pytun.IFF_MULTI_QUEUE if multi_queue else 0)
    device = pytun.TunTapDevice(name=name, flags=flags)
    try:
        fd = device.fileno()
        if vnet:
            fcntl.ioctl(fd, _TUNSETVNETHDRSZ, struct.pack("i", VIRTIO_NET_HDR_SIZE))
            try:
                fcntl.ioctl(fd, _TUNSETOFFLOAD, _TUN_F_CSUM | _TUN_F_TSO4 | _TUN_F_TSO6)
            except OSError as exc:  # a kernel without TSO6 for TUNs: IPv6 comes up cut
                if exc.errno != errno.EINVAL:
                    raise
                fcntl.ioctl(fd, _TUNSETOFFLOAD, _TUN_F_CSUM | _TUN_F_TSO4)
        os.set_inheritable(fd, False)  # a child holding the fd would keep the device alive
        os.set_blocking(fd, False)
    except BaseException:
        device.close()
        raise
    return device


class _InheritedQueue:
    """A queue fd opened by another process: what `TunLink` needs of a pytun device."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd = fd
        self.name = name

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)


def _complete_checksum(packet: memoryview, start: int, offset: int) -> bytes:
    """NEEDS_CSUM on a packet the stack verifies (UDP, say): fill in its checksum here."""
    data = bytearray(packet)
    at = start + offset
    if at + 2 > len(data):
        return bytes(data)  # nonsense from the kernel: the stack's own checks drop it
    # The field holds the pseudo-header sum: summing over it completes the sum (RFC 1071).
    data[at : at + 2] = internet_checksum(data[start:]).to_bytes(2, "big")
    return bytes(data)


def _disable_ipv6(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # no IPv6 here: nothing to switch off
        _ipv6_knob(name, "disable_ipv6", "1")


def _ipv6_knob(name: str, knob: str, value: str) -> None:
    with open(f"/proc/sys/net/ipv6/conf/{name}/{knob}", "w") as f:
        f.write(value)


_SIOCSIFADDR = 0x8916


def _add_ipv6_address(name: str, interface: IPv6Interface) -> None:
    """`ip -6 addr add ADDR/LEN dev NAME`, without a subprocess: SIOCSIFADDR on an AF_INET6
    socket takes a struct in6_ifreq (address, prefix length, interface index)."""
    request = struct.pack(
        "16sIi", interface.ip.packed, interface.network.prefixlen, socket.if_nametoindex(name)
    )
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, _SIOCSIFADDR, request)
