"""ICMP errors and IP header settings through the public API. The test holds one end of
a memory link and speaks raw IPv4 to the stack: a far host or a router that answers
with ICMP errors (RFC 9293 3.9.2.1), in virtual time."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Address

import pytest
import trio
import trio.testing

from userstack import TcpConfig, TcpStream, UserStack, memory_link_pair, open_stack
from userstack.link.memory import MemoryLink
from userstack.tcp.errors import ConnectionFailed
from userstack.tcp.events import ErrorReason
from userstack.wire.icmp import IcmpType
from userstack.wire.ipv4 import IPv4Packet
from userstack.wire.packet import build_icmp_error_packet, build_tcp_packet, parse_tcp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

US, FAR, ROUTER = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), IPv4Address("10.0.0.254")
UNREACHABLE = IcmpType.DESTINATION_UNREACHABLE


@asynccontextmanager
async def raw_peer(config: TcpConfig | None = None) -> AsyncIterator[tuple[UserStack, MemoryLink]]:
    """A stack at US and the other end of its link, held by the test."""
    ours, theirs = memory_link_pair()
    async with open_stack(ours, US, config=config, isn_key=b"icmp") as stack:
        yield stack, theirs


async def answer_syns(
    link: MemoryLink, code: int, source: IPv4Address, count: int = 100
) -> None:
    """Answer each SYN (up to `count`) with Destination Unreachable `code` quoting it."""
    for _ in range(count):
        syn = await link.receive()
        await link.send(build_icmp_error_packet(source, US, UNREACHABLE, code, syn))


async def test_port_unreachable_answering_the_syn_refuses_the_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SHLD-26, as Linux: connect() fails with ECONNREFUSED at once, not after a timeout."""
    async with raw_peer() as (stack, link), trio.open_nursery() as nursery:
        nursery.start_soon(answer_syns, link, 3, FAR, 1)
        start = trio.current_time()
        with pytest.raises(ConnectionRefusedError) as caught:
            await stack.open_tcp_stream(FAR, 80)
        assert caught.value.errno == errno.ECONNREFUSED
        assert trio.current_time() - start < 0.5
        assert stack.counters.icmp_errors_accepted == 1
        assert stack.connections() == []


async def test_a_timeout_after_host_unreachable_reports_ehostunreach(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """MUST-56: a soft error does not abort; MUST-47 / SHLD-25: when the SYN retries run
    out, the application learns why (EHOSTUNREACH, as Linux), not just ETIMEDOUT."""
    async with raw_peer(TcpConfig(syn_retries=2)) as (stack, link), trio.open_nursery() as n:
        n.start_soon(answer_syns, link, 1, ROUTER)
        start = trio.current_time()
        with pytest.raises(OSError) as caught:
            await stack.open_tcp_stream(FAR, 80)
        assert caught.value.errno == errno.EHOSTUNREACH
        assert trio.current_time() - start > 6  # the SYN timeouts ran: 1 + 2 + 4 s
        assert stack.counters.icmp_errors_accepted == 3
        n.cancel_scope.cancel()


async def handshake(stack: UserStack, link: MemoryLink, **kwargs: object) -> TcpStream:
    """Open a stream to FAR, the test playing FAR's side of the handshake."""
    async with trio.open_nursery() as nursery:
        opened: list[TcpStream] = []

        async def connect() -> None:
            opened.append(await stack.open_tcp_stream(FAR, 80, **kwargs))  # type: ignore[arg-type]

        nursery.start_soon(connect)
        _, syn = parse_tcp_packet(await link.receive())
        syn_ack = TcpSegment(80, syn.src_port, SeqNum(1000), syn.seq + 1,
                             TcpFlags.SYN | TcpFlags.ACK, 65535, TcpOptions(mss=1460))
        await link.send(build_tcp_packet(FAR, US, syn_ack))
        await link.receive()  # the handshake's ACK
    return opened[0]


async def test_an_established_connection_times_out_with_the_last_soft_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with raw_peer(TcpConfig(max_retries=2)) as (stack, link):
        stream = await handshake(stack, link)
        await stream.send_all(b"hello")
        data = await link.receive()
        await link.send(build_icmp_error_packet(ROUTER, US, IcmpType.TIME_EXCEEDED, 0, data))
        await trio.testing.wait_all_tasks_blocked()
        assert stream.info().soft_error == "no route to host"
        with pytest.raises(trio.BrokenResourceError) as caught:
            await stream.receive_some()
        cause = caught.value.__cause__
        assert isinstance(cause, OSError) and cause.errno == errno.EHOSTUNREACH
        assert isinstance(cause.__cause__, ConnectionFailed)
        assert cause.__cause__.reason is ErrorReason.HOST_UNREACHABLE


async def test_tos_and_ttl_of_a_stream(autojump_clock: trio.testing.MockClock) -> None:
    """MUST-48: the application sets the DiffServ field, also mid-connection (like
    IP_TOS); MUST-49: the TTL comes from the connection's TcpConfig."""
    async with raw_peer() as (stack, link):
        stream = await handshake(stack, link, config=TcpConfig(ttl=17, tos=0x28))
        assert stream.tos == 0x28
        await stream.send_all(b"af11")
        first = IPv4Packet.parse(await link.receive())
        stream.tos = 0xB8  # EF
        await stream.send_all(b"ef")
        second = IPv4Packet.parse(await link.receive())
        assert [(p.ttl, p.tos) for p in (first, second)] == [(17, 0x28), (17, 0xB8)]
        with pytest.raises(ValueError, match="ECN bits"):
            stream.tos = 0xB9
        assert stream.tos == 0xB8
