"""Stdlib TCP sockets made inside trio_network() (sockets/stdlib.py): listeners on the
stack, handed to trio with from_stdlib_socket; never kernel sockets; refused for anything
else. Outside a block the stdlib and trio are untouched."""

from __future__ import annotations

import errno
import socket

import pytest
import trio
from streams_helpers import SERVER_ADDR, start_stacks
from trio.testing import MockClock

from userstack.sockets import UserSocket
from userstack.sockets.stdlib import StdlibListener


async def test_a_stdlib_listener_is_the_stacks(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        with server.trio_network():
            sock = socket.socket()  # the stdlib's defaults: AF_INET, SOCK_STREAM
            assert isinstance(sock, StdlibListener)
            assert (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
            sock.bind((SERVER_ADDR, 0))
            sock.setblocking(False)
            sock.listen(5)
            host, port = sock.getsockname()
            assert host == SERVER_ADDR and port > 0
            listener = trio.socket.from_stdlib_socket(sock)
            assert isinstance(listener, UserSocket) and listener is sock.socket
        stream = await client.open_tcp_stream(SERVER_ADDR, port)
        with server.trio_network():
            accepted, peer = await listener.accept()
        assert peer == stream.socket.getsockname()
        await stream.send_all(b"to a stdlib listener")
        assert await accepted.recv(100) == b"to a stdlib listener"
        accepted.close()
        sock.close()
        nursery.cancel_scope.cancel()


async def test_anything_but_a_listener_is_refused(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, server, _, _ = await start_stacks(nursery)
        with server.trio_network(), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            for call in (lambda: sock.fileno(), lambda: sock.accept(),
                         lambda: sock.connect((SERVER_ADDR, 7)), lambda: sock.sendall(b"x")):
                with pytest.raises(OSError, match="userstack trio_network") as caught:
                    call()
                assert caught.value.errno == errno.EACCES
            with pytest.raises(AttributeError):
                sock.no_such_method  # noqa: B018
            with pytest.raises(OSError) as caught:
                sock.bind(("10.9.9.9", 80))  # not the stack's: as the kernel's bind(2)
            assert caught.value.errno == errno.EADDRNOTAVAIL
            # a family the stack has no address in, and UDP, are no stdlib listeners
            for family, kind in ((socket.AF_INET6, socket.SOCK_STREAM),
                                 (socket.AF_INET, socket.SOCK_DGRAM)):
                with pytest.raises(OSError, match="userstack trio_network"):
                    socket.socket(family, kind)
        nursery.cancel_scope.cancel()


async def test_outside_a_block_the_stdlib_and_trio_are_untouched(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        _, server, _, _ = await start_stacks(nursery)
        with server.trio_network():
            pass  # installs the wrappers (once per process)
        left, right = socket.socketpair()  # AF_UNIX: no network
        with left, right:
            assert type(left) is socket.socket
            wrapped = trio.socket.from_stdlib_socket(left)
            assert not isinstance(wrapped, UserSocket)
            await wrapped.send(b"kernel")
            assert right.recv(10) == b"kernel"
        nursery.cancel_scope.cancel()


async def test_stdlib_names_resolve_in_the_stacks_table(autojump_clock: MockClock) -> None:
    """socket.getaddrinfo inside a block asks the stack's table, never the host's DNS
    (socket.create_connection resolves before it makes its socket)."""
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        client.hosts["server.test"] = server.address
        with client.trio_network():
            [(family, kind, _, _, address)] = socket.getaddrinfo("server.test", 80)
            assert (family, kind, address) == (socket.AF_INET, socket.SOCK_STREAM,
                                               (SERVER_ADDR, 80))
            with pytest.raises(socket.gaierror) as caught:
                socket.getaddrinfo("example.com", 80)  # not in the table: no DNS query
            assert caught.value.errno == socket.EAI_NONAME
            with pytest.raises(OSError, match="userstack trio_network"):
                socket.create_connection(("server.test", 80))
            # trio's numeric-only first try still works (it never leaves the process)
            assert socket.getaddrinfo(SERVER_ADDR, 80, flags=socket.AI_NUMERICHOST
                                      | socket.AI_NUMERICSERV)[0][4] == (SERVER_ADDR, 80)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: socket.gethostbyname("example.com"),
        lambda: socket.gethostbyname_ex("example.com"),
        lambda: socket.gethostbyaddr("example.com"),
        lambda: socket.getnameinfo(("example.com", 80), 0),
    ],
    ids=["gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"],
)
async def test_other_stdlib_lookups_of_a_name_are_refused(
    autojump_clock: MockClock, lookup: object
) -> None:
    """The stdlib's older lookups could ask the host's DNS: inside a block a name is
    refused, naming the stack; a numeric address is answered as ever (no query)."""
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        with client.trio_network():
            with pytest.raises(OSError, match="userstack trio_network") as caught:
                lookup()  # type: ignore[operator]
            assert caught.value.errno == errno.EACCES
            assert socket.gethostbyname(SERVER_ADDR) == SERVER_ADDR
        nursery.cancel_scope.cancel()
