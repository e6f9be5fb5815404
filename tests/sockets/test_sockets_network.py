"""trio_network(): trio's hooks point at a stack inside the block, and nowhere else."""

from __future__ import annotations

import errno
import socket

import pytest
import trio
import trio.testing
from streams_helpers import SERVER_ADDR, connect_pair, start_stacks
from trio.testing import MockClock

from userstack import memory_link_pair, open_stack
from userstack.apps.simple import echo
from userstack.sockets import UserSocket


async def test_the_hooks_are_installed_inside_and_restored_after(
    autojump_clock: MockClock,
) -> None:
    class Marker(trio.abc.SocketFactory):
        def socket(self, family: int = 0, type: int = 0, proto: int = 0) -> trio.socket.SocketType:
            raise AssertionError("not used")

    before = Marker()
    trio.socket.set_custom_socket_factory(before)
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        with client.trio_network():
            assert isinstance(trio.socket.socket(), UserSocket)
            with server.trio_network():  # nested: the inner stack wins, then the outer again
                assert trio.socket.socket()._host is server._sockets  # type: ignore[attr-defined]
            assert trio.socket.socket()._host is client._sockets  # type: ignore[attr-defined]
        assert trio.socket.set_custom_socket_factory(None) is before
        nursery.cancel_scope.cancel()


async def test_sockets_the_stack_cannot_serve_are_refused_naming_it(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        with client.trio_network():
            for family, kind in [
                (socket.AF_INET, socket.SOCK_DGRAM),
                (socket.AF_UNIX, socket.SOCK_STREAM),
                (socket.AF_INET6, socket.SOCK_STREAM),
                (socket.AF_INET, socket.SOCK_RAW),
            ]:
                with pytest.raises(OSError, match="userstack") as caught:
                    trio.socket.socket(family, kind)
                assert caught.value.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT)
            # a stdlib TCP socket is a listener-to-be on the stack (sockets/stdlib.py), never
            # a kernel socket: used as a client it is refused; any other kind is not made
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stdlib_socket:
                with pytest.raises(OSError, match="userstack trio_network") as caught:
                    stdlib_socket.connect((SERVER_ADDR, 80))
                assert caught.value.errno == errno.EACCES
            with pytest.raises(OSError, match="userstack trio_network"):
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with pytest.raises(socket.gaierror):
                await trio.socket.getaddrinfo("example.com", 80)  # no DNS: not in the table
        nursery.cancel_scope.cancel()


async def test_names_resolve_in_the_stacks_table(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        await nursery.start(server.serve_tcp, echo, 7)
        client.hosts["echo.test"] = server.address
        with client.trio_network():
            [(family, kind, _, _, address)] = await trio.socket.getaddrinfo("echo.test", "7")
            assert (family, kind, address) == (socket.AF_INET, socket.SOCK_STREAM, (SERVER_ADDR, 7))
            assert await trio.socket.getnameinfo((SERVER_ADDR, 7), 0) == ("echo.test", "7")
            stream = await trio.open_tcp_stream("echo.test", 7, happy_eyeballs_delay=0.1)
            await stream.send_all(b"by name")
            assert await stream.receive_some() == b"by name"
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_localhost_loops_back_inside_the_stack(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, server, _, _ = await start_stacks(nursery)
        with server.trio_network():
            await nursery.start(trio.serve_tcp, echo, 7)
            for name in ("localhost", "127.0.0.1"):
                stream = await trio.open_tcp_stream(name, 7)
                await stream.send_all(b"to myself")
                assert await stream.receive_some() == b"to myself"
                await stream.aclose()
        own = await server.open_tcp_stream("localhost", 7)  # the stack's twin too
        await own.aclose()
        with pytest.raises(ConnectionRefusedError):  # our own RST, looped back too
            await server.open_tcp_stream("localhost", 9)
        assert server.counters.packets_in > 0
        nursery.cancel_scope.cancel()


async def test_tcp_stream_is_a_drop_in_for_socket_stream(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)
        assert a.socket.getpeername() == (SERVER_ADDR, 80)
        assert a.socket.getsockname() == b.socket.getpeername()
        a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1 and a.nodelay
        assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 4) == b"\x01\0\0\0"
        with pytest.raises(OSError) as caught:
            a.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 5)
        assert caught.value.errno == errno.ENOPROTOOPT
        await b.aclose()
        assert a.socket.fileno() != -1 and b.socket.fileno() == -1
        with pytest.raises(OSError):
            await client.open_tcp_stream(SERVER_ADDR, 80, local_address="10.9.9.9")
        nursery.cancel_scope.cancel()


async def test_kernel_fallback_gives_other_sockets_to_the_kernel(netns: object) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        with client.trio_network(kernel_fallback=True):
            udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            assert not isinstance(udp, UserSocket)
            udp.close()
            assert isinstance(trio.socket.socket(), UserSocket)  # TCP still goes to the stack
        nursery.cancel_scope.cancel()


async def test_both_families_inside_trio_network(autojump_clock: MockClock) -> None:
    """A dual-stack server: trio.serve_tcp opens an AF_INET and an AF_INET6 listener (the
    latter with IPV6_V6ONLY, as trio sets it), and clients reach it in either family."""
    left, right = memory_link_pair()
    async with (
        open_stack(left, "10.0.0.1", address6="fd00::1", isn_key=b"c") as client,
        open_stack(right, SERVER_ADDR, address6="fd00::2", isn_key=b"s") as server,
        trio.open_nursery() as nursery,
    ):
        with server.trio_network():
            listeners = await nursery.start(trio.serve_tcp, echo, 8080)
        sockets = [listener.socket for listener in listeners]
        assert sorted(sock.family for sock in sockets) == [socket.AF_INET, socket.AF_INET6]
        v6 = next(sock for sock in sockets if sock.family == socket.AF_INET6)
        assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert v6.getsockname() == ("::", 8080, 0, 0)
        with client.trio_network():
            for host, family in ((SERVER_ADDR, socket.AF_INET), ("fd00::2", socket.AF_INET6)):
                stream = await trio.open_tcp_stream(host, 8080)
                assert stream.socket.family == family
                assert stream.socket.getpeername()[:2] == (host, 8080)
                await stream.send_all(b"either family")
                assert await stream.receive_some() == b"either family"
                await stream.aclose()
            infos = await trio.socket.getaddrinfo("localhost", 7, family=socket.AF_INET6)
            assert [info[4] for info in infos] == [("fd00::1", 7, 0, 0)]
            with pytest.raises(OSError) as caught:  # no IPv4-mapped addresses
                await trio.socket.socket(socket.AF_INET6).connect((SERVER_ADDR, 8080))
            assert caught.value.errno == errno.EAFNOSUPPORT
        nursery.cancel_scope.cancel()
