"""The real link: a Linux TUN device (IFF_TUN | IFF_NO_PI), the only place pytun is used.

The kernel routes the device's subnet into the TUN; every read is one IP packet the kernel sends
to the stack, every write one packet the kernel receives from it. The fd is non-blocking: after a
wake-up from `trio.lowlevel.wait_readable` we read until EAGAIN and hand the whole batch up, since
one read per wake-up would cost a trip through the scheduler per packet. Writes go straight out
with `os.write`; only on EAGAIN do we wait for `wait_writable`.

The kernel also sends what it sends on any interface: with IPv6 on, router solicitations and MLD
reports. `disable_ipv6=True` (the default) stops most of that at the source; whatever non-IPv4
still arrives is dropped here and counted in `stats.rx_not_ipv4`, never passed up. A write the
kernel refuses as malformed (EINVAL: e.g. a corrupted version nibble from a FaultyLink) is
dropped and counted in `stats.tx_rejected`, as the peer's problem, not the driver's.

Closing the fd removes the device (it is not persistent), with its address and routes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface

import pytun
import trio

from userstack.link.base import LinkBase

DEFAULT_NAME = "userstack%d"  # the kernel fills in %d with the first free number
DEFAULT_MTU = 1500
_MAX_BATCH = 256  # reads per wake-up, so a flood cannot starve the rest of the driver
_READ_SIZE = 65535  # larger than any MTU: a short buffer would silently truncate a packet


@dataclass(slots=True)
class TunStats:
    rx_packets: int = 0  # IPv4 packets passed up
    rx_not_ipv4: int = 0  # dropped: IPv6 or anything else that is not IPv4
    tx_packets: int = 0  # written to the kernel
    tx_rejected: int = 0  # the kernel refused them as malformed (EINVAL)


class TunLink(LinkBase):
    """A TUN device as a Link. Make one with `TunLink.create(...)`; `aclose()` removes it."""

    def __init__(self, device: pytun.TunTapDevice, mtu: int) -> None:
        super().__init__()
        self._device = device
        self._fd: int = device.fileno()
        self.name: str = device.name
        self.mtu = mtu
        self.stats = TunStats()

    @classmethod
    def create(
        cls,
        name: str = DEFAULT_NAME,
        *,
        host_addr: str | IPv4Interface | None = "10.0.0.1/24",
        mtu: int = DEFAULT_MTU,
        disable_ipv6: bool = True,
    ) -> TunLink:
        """Create the device in the calling thread's network namespace and bring it up.

        `host_addr` is the kernel's side ("10.0.0.1/24": the kernel is 10.0.0.1 and routes the
        rest of 10.0.0.0/24 into the TUN, where the stack answers); None leaves it unaddressed.
        """
        device = pytun.TunTapDevice(name=name, flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
        try:
            fd = device.fileno()
            os.set_inheritable(fd, False)  # a child holding the fd would keep the device alive
            os.set_blocking(fd, False)
            if disable_ipv6:
                _disable_ipv6(device.name)  # before up: no router solicitation, no MLD
            if host_addr is not None:
                interface = IPv4Interface(host_addr)
                device.addr = str(interface.ip)
                device.netmask = str(interface.netmask)
            device.mtu = mtu
            device.up()
        except BaseException:
            device.close()
            raise
        return cls(device, mtu)

    async def send_batch(self, packets: Sequence[bytes]) -> None:
        self._check_open()
        fd, write, stats = self._fd, os.write, self.stats
        for packet in packets:
            while True:
                try:
                    write(fd, packet)
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
        """Read until EAGAIN (or _MAX_BATCH packets); keep only IPv4."""
        fd, read, batch, not_ipv4 = self._fd, os.read, [], 0
        for _ in range(_MAX_BATCH):
            try:
                packet = read(fd, _READ_SIZE)
            except BlockingIOError:
                break
            if packet and packet[0] >> 4 == 4:
                batch.append(packet)
            else:
                not_ipv4 += 1
        self.stats.rx_packets += len(batch)
        self.stats.rx_not_ipv4 += not_ipv4
        return batch

    async def _aclose(self) -> None:
        trio.lowlevel.notify_closing(self._fd)  # a task blocked in receive gets ClosedResourceError
        self._device.close()
        await trio.lowlevel.checkpoint()


def _disable_ipv6(name: str) -> None:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as knob:
            knob.write("1")
    except FileNotFoundError:
        pass  # no IPv6 in this kernel or namespace: nothing to switch off
