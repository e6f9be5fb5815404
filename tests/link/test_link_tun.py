"""TunLink against the real kernel, inside a private network namespace.

The kernel side is 10.0.0.1/24; anything it sends into 10.0.0.0/24 comes out of the link, and any
packet written to the link arrives at the kernel as if 10.0.0.2 had sent it. `fail_after` only
guards against a hang; none of these waits is a race.
"""

from __future__ import annotations

import os
import socket
from ipaddress import IPv4Address

import dpkt
import pytest
import trio
from netns import NetNs

from userstack.link.base import Link
from userstack.link.tun import TunLink
from userstack.wire import (
    IPPROTO_ICMP,
    IcmpEcho,
    IcmpType,
    IPv4Packet,
    IPv6Packet,
    build_icmp_packet,
    parse_icmp_packet,
)

KERNEL = IPv4Address("10.0.0.1")
STACK = IPv4Address("10.0.0.2")
GUARD = 5.0  # seconds; only ever reached if something is broken

pytestmark = pytest.mark.netns


def udp_packet(src: IPv4Address, sport: int, dst: IPv4Address, dport: int, data: bytes) -> bytes:
    """An IPv4/UDP packet built by dpkt, with both checksums computed independently of our wire."""
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=src.packed, dst=dst.packed, p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
    return bytes(ip)


def interfaces() -> list[str]:
    """The calling thread's namespace's interfaces (/sys would show the host's: it is mounted
    for the namespace it was mounted in)."""
    return [name for _, name in socket.if_nameindex()]


def kernel_udp_socket() -> trio.socket.SocketType:
    return trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)


async def test_kernel_udp_arrives_on_the_link(netns: NetNs) -> None:
    async with TunLink.create() as link:
        assert isinstance(link, Link)
        with kernel_udp_socket() as sock:
            await sock.sendto(b"to the stack", (str(STACK), 9))
        with trio.fail_after(GUARD):
            packet = await link.receive()
        ip = IPv4Packet.parse(packet)
        assert (ip.src, ip.dst, ip.protocol) == (KERNEL, STACK, dpkt.ip.IP_PROTO_UDP)
        assert ip.payload[8:] == b"to the stack"
        assert link.stats.rx_packets == 1


async def test_hand_built_udp_reaches_a_kernel_socket(netns: NetNs) -> None:
    async with TunLink.create() as link:
        with kernel_udp_socket() as sock:
            await sock.bind((str(KERNEL), 0))
            port = sock.getsockname()[1]
            await link.send(udp_packet(STACK, 5000, KERNEL, port, b"from the stack"))
            with trio.fail_after(GUARD):
                data, sender = await sock.recvfrom(2048)
        assert (data, sender) == (b"from the stack", (str(STACK), 5000))
        assert link.stats.tx_packets == 1


async def test_kernel_answers_an_echo_request_built_by_the_wire_layer(netns: NetNs) -> None:
    async with TunLink.create() as link:
        request = IcmpEcho(IcmpType.ECHO_REQUEST, identifier=0x1234, sequence=7, data=b"ping")
        await link.send(build_icmp_packet(STACK, KERNEL, request))
        with trio.fail_after(GUARD):
            ip, reply = parse_icmp_packet(await link.receive())
        assert (ip.src, ip.dst, ip.protocol) == (KERNEL, STACK, IPPROTO_ICMP)
        assert reply == request.reply()


async def test_receive_batch_returns_everything_queued(netns: NetNs) -> None:
    async with TunLink.create() as link:
        with kernel_udp_socket() as sock:
            for i in range(20):  # each sendto has queued its packet on the TUN when it returns
                await sock.sendto(bytes([i]), (str(STACK), 9))
        with trio.fail_after(GUARD):
            batch = await link.receive_batch()
        assert [IPv4Packet.parse(p).payload[8:] for p in batch] == [bytes([i]) for i in range(20)]


async def test_both_families_are_passed_up(netns: NetNs) -> None:
    async with TunLink.create(host_addr6="fd00::1/64") as link:
        shown = await trio.run_process(
            ["ip", "-6", "-o", "addr", "show", "dev", link.name], capture_stdout=True
        )
        assert "fd00::1/64" in shown.stdout.decode() and "tentative" not in shown.stdout.decode()
        with trio.socket.socket(trio.socket.AF_INET6, trio.socket.SOCK_DGRAM) as sock6:
            await sock6.sendto(b"v6", ("fd00::2", 9))
        with kernel_udp_socket() as sock:
            await sock.sendto(b"v4", (str(STACK), 9))
        seen: list[bytes] = []
        with trio.fail_after(GUARD):
            while b"v4" not in seen:  # the kernel's own IPv6 chatter (RS, MLD) may come too
                packet = await link.receive()
                ip = IPv6Packet.parse(packet) if packet[0] >> 4 == 6 else IPv4Packet.parse(packet)
                if ip.protocol == 17:
                    seen.append(ip.payload[8:])
        assert seen == [b"v6", b"v4"]  # the TUN queue is FIFO
        assert link.stats.rx_not_ip == 0


async def test_ipv6_is_switched_off_by_default(netns: NetNs) -> None:
    async with TunLink.create() as link:
        with open(f"/proc/sys/net/ipv6/conf/{link.name}/disable_ipv6") as knob:
            assert knob.read().strip() == "1"


async def test_mtu_address_and_name(netns: NetNs) -> None:
    async with TunLink.create("ustest%d", host_addr="10.9.0.1/16", mtu=1280) as link:
        assert link.name.startswith("ustest")
        shown = await trio.run_process(["ip", "-o", "addr", "show", "dev", link.name],
                                       capture_stdout=True)
        assert b"inet 10.9.0.1/16" in shown.stdout
        shown = await trio.run_process(["ip", "-o", "link", "show", "dev", link.name],
                                       capture_stdout=True)
        assert b" mtu 1280 " in shown.stdout and b",UP," in shown.stdout
        assert link.mtu == 1280


async def test_a_write_the_kernel_refuses_is_counted_not_raised(netns: NetNs) -> None:
    async with TunLink.create() as link:
        await link.send(b"\x00" * 20)  # version nibble 0: EINVAL from the TUN driver
        assert link.stats.tx_rejected == 1


async def test_close_removes_the_device_and_wakes_the_receiver(netns: NetNs) -> None:
    link = TunLink.create()
    name = link.name
    assert name in interfaces()
    with pytest.RaisesGroup(trio.ClosedResourceError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.receive)
            await trio.testing.wait_all_tasks_blocked()
            await link.aclose()
    assert name not in interfaces()
    with pytest.raises(trio.ClosedResourceError):
        await link.receive_batch()
    with pytest.raises(trio.ClosedResourceError):
        await link.send(b"\x45" + b"\x00" * 19)


def test_the_tun_fd_is_not_inherited(netns: NetNs) -> None:
    link = TunLink.create()
    try:
        assert not os.get_inheritable(link._fd)
        assert not os.get_blocking(link._fd)
    finally:
        trio.run(link.aclose)


def test_the_device_lives_in_the_tests_namespace(netns: NetNs) -> None:
    link = TunLink.create()
    try:
        assert interfaces() == ["lo", link.name]
    finally:
        trio.run(link.aclose)
