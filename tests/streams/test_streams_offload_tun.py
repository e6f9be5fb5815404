"""Offload over a real TUN, in a private namespace: the kernel's super-segments and ours.

With TUNSETOFFLOAD the kernel hands up its TCP segments unsegmented and with only the
pseudo-header sum in the checksum field (virtio NEEDS_CSUM), and takes ours the same way.
These tests move data each way between a kernel socket and the stack, sha256-checked, and
look at the link's counters to see that the offloaded paths were the ones taken.
"""

from __future__ import annotations

import hashlib
import socket
from functools import partial

import pytest
import trio
from streams_helpers import pattern

from userstack import TcpStream, TunLink, open_stack
from userstack.stack.counters import StackCounters
from userstack.wire.offload import NO_OFFLOAD, TSO

pytestmark = pytest.mark.netns

KERNEL, STACK = "10.0.0.1", "10.0.0.2"
SIZE = 4_000_000
GUARD = 60.0  # seconds; only reached if something is broken


async def _sink(digests: list[bytes], stream: TcpStream) -> None:
    """Read to the peer's FIN, remember the sha256 of what came."""
    digest = hashlib.sha256()
    async with stream:
        async for chunk in stream:
            digest.update(chunk)
    digests.append(digest.digest())


async def _source(data: bytes, stream: TcpStream) -> None:
    async with stream:
        await stream.send_all(data)


async def _kernel_upload(data: bytes) -> None:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.connect((STACK, 9))
    async with trio.SocketStream(sock) as kernel:
        await kernel.send_all(data)
        await kernel.send_eof()
        assert await kernel.receive_some(1) == b""


async def _kernel_download() -> bytes:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.connect((STACK, 19))
    got = bytearray()
    async with trio.SocketStream(sock) as kernel:
        while chunk := await kernel.receive_some(1 << 20):
            got += chunk
    return bytes(got)


async def _upload_through(link: TunLink, data: bytes) -> StackCounters:
    """A kernel socket uploads `data` to a sink on the stack; sha256-checked."""
    digests: list[bytes] = []
    with trio.fail_after(GUARD):
        async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
            await nursery.start(partial(stack.serve_tcp, partial(_sink, digests), 9))
            await _kernel_upload(data)
            nursery.cancel_scope.cancel()
    assert digests == [hashlib.sha256(data).digest()]
    return stack.counters


async def test_kernel_super_segments_arrive_whole_and_unverified(netns: object) -> None:
    link = TunLink.create(host_addr=f"{KERNEL}/24")
    assert link.offload == TSO and link.stats.offload_refused == 0
    counters = await _upload_through(link, pattern(SIZE, 11))
    assert link.stats.rx_super_segments > 0  # the kernel sent more than one MSS at a time
    assert counters.malformed == 0


async def test_kernel_takes_our_super_segments_and_partial_checksums(netns: object) -> None:
    link = TunLink.create(host_addr=f"{KERNEL}/24")
    data = pattern(SIZE, 12)
    with trio.fail_after(GUARD):
        async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
            await nursery.start(partial(stack.serve_tcp, partial(_source, data), 19))
            got = await _kernel_download()
            nursery.cancel_scope.cancel()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert link.stats.tx_rejected == 0
    assert link.stats.tx_super_segments > 0  # the kernel cut them (or took them whole)
    assert link.stats.tx_packets < SIZE // 1460


async def test_without_offload_the_link_is_plain(netns: object) -> None:
    link = TunLink.create(host_addr=f"{KERNEL}/24", offload=False)
    assert link.offload == NO_OFFLOAD and link.stats.offload_refused == 0
    counters = await _upload_through(link, pattern(SIZE // 4, 13))
    assert link.stats.rx_super_segments == 0 and counters.malformed == 0
