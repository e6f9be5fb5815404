"""A multi-queue TUN (IFF_MULTI_QUEUE) against the real kernel, in a private namespace.

The kernel steers each flow to one queue: by its hash when it knows nothing of the flow, and
to the queue that last transmitted the flow when it does (what keeps a connection on the
worker that owns it). `fail_after` only guards against a hang.
"""

from __future__ import annotations

import socket

import pytest
import trio
from netns import NetNs
from test_link_tun import GUARD, KERNEL, STACK, kernel_udp_socket, udp_packet

from userstack.link.tun import TunLink
from userstack.wire import IPv4Packet

pytestmark = pytest.mark.netns
FLOWS = 64


async def gather(queues: list[TunLink], count: int) -> list[list[bytes]]:
    """Read from every queue at once until `count` packets have arrived in all."""
    got: list[list[bytes]] = [[] for _ in queues]
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:

            async def read(i: int) -> None:
                while True:
                    got[i] += await queues[i].receive_batch()
                    if sum(map(len, got)) >= count:
                        nursery.cancel_scope.cancel()

            for i in range(len(queues)):
                nursery.start_soon(read, i)
    return got


async def test_flows_spread_over_the_queues_by_hash(netns: NetNs) -> None:
    first = TunLink.create(queues=2)
    second = first.open_queue()
    try:
        for port in range(FLOWS):  # one datagram per flow, from the kernel to the stack
            with kernel_udp_socket() as sock:
                await sock.sendto(b"%d" % port, (str(STACK), 1000 + port))
        got = await gather([first, second], FLOWS)
        assert all(got), "every queue gets some of 64 flows"
        ports = sorted(IPv4Packet.parse(p).payload[2] << 8 | IPv4Packet.parse(p).payload[3]
                       for queue in got for p in queue)
        assert ports == [1000 + port for port in range(FLOWS)]  # each flow once, in one queue
    finally:
        await second.aclose()
        await first.aclose()
    assert first.name not in [name for _, name in socket.if_nameindex()]  # last queue: gone


async def test_replies_come_back_to_the_queue_that_sent(netns: NetNs) -> None:
    first = TunLink.create(queues=2)
    second = first.open_queue()
    queues = [first, second]
    try:
        with kernel_udp_socket() as sock:
            await sock.bind((str(KERNEL), 0))
            port = sock.getsockname()[1]
            for n in range(FLOWS):  # flow n leaves through queue n % 2
                await queues[n % 2].send(udp_packet(STACK, 2000 + n, KERNEL, port, b"x"))
            for _ in range(FLOWS):
                with trio.fail_after(GUARD):
                    _, (_, sender_port) = await sock.recvfrom(16)
                await sock.sendto(b"reply", (str(STACK), sender_port))
        got = await gather(queues, FLOWS)
        for i, queue in enumerate(got):
            dports = {IPv4Packet.parse(p).payload[2] << 8 | IPv4Packet.parse(p).payload[3]
                      for p in queue}
            assert dports == {2000 + n for n in range(FLOWS) if n % 2 == i}
    finally:
        await second.aclose()
        await first.aclose()


async def test_misuse_is_refused(netns: NetNs) -> None:
    with pytest.raises(ValueError, match="at least one queue"):
        TunLink.create(queues=0)
    async with TunLink.create() as single:
        with pytest.raises(ValueError, match="single-queue"):
            single.open_queue()
