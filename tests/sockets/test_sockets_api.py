"""UserSocket against socket(7) and tcp(7): calls, errnos and options, two stacks in memory."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
import trio
import trio.testing
from sockets_helpers import PORT, listening, settle, socket_pair
from streams_helpers import CLIENT_ADDR, SERVER_ADDR, start_stacks
from trio.testing import MockClock

from userstack import TcpConfig
from userstack.sockets import Mode, UserSocket
from userstack.tcp.info import TcbInfo
from userstack.tcp.state import State

TCP, SOL = socket.IPPROTO_TCP, socket.SOL_SOCKET


async def test_bind_port_zero_picks_a_port_and_bind_before_connect_keeps_it(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        await listening(server)
        sock = client.socket()
        assert sock.getsockname() == ("0.0.0.0", 0)
        await sock.bind(("", 0))
        ip, port = sock.getsockname()
        assert ip == "0.0.0.0" and 49152 <= port <= 65535
        await sock.connect((SERVER_ADDR, PORT))
        assert sock.getsockname() == (CLIENT_ADDR, port)  # the port bound before connect
        assert sock.getpeername() == (SERVER_ADDR, PORT)
        assert (sock.family, sock.type, sock.getsockopt(SOL, socket.SO_PROTOCOL)) == (
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        nursery.cancel_scope.cancel()


async def test_bind_conflicts_are_eaddrinuse_unless_so_reuseaddr_allows(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        first = client.socket()
        await first.bind(("", 5000))
        second = client.socket()
        with pytest.raises(OSError) as caught:
            await second.bind((CLIENT_ADDR, 5000))
        assert caught.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as caught:
            await second.bind(("10.9.9.9", 5001))
        assert caught.value.errno == errno.EADDRNOTAVAIL
        first.close()
        await second.bind((CLIENT_ADDR, 5000))  # free again after close
        listener = await listening(server)
        with pytest.raises(OSError) as caught:
            await (server.socket()).bind(("", PORT))  # a listener has it
        assert caught.value.errno == errno.EADDRINUSE
        # a connection in TIME-WAIT holds the port: bind needs SO_REUSEADDR (socket(7))
        a = server.socket()
        await a.bind(("", 6000))
        b, _ = await _connect_to(client, a)
        a_conn, _ = b
        a_conn.close()
        await settle()
        _.close()
        await settle()
        assert State.TIME_WAIT in [row.state for row in server.connections()]
        again = server.socket()
        with pytest.raises(OSError) as caught:
            await again.bind(("", 6000))
        assert caught.value.errno == errno.EADDRINUSE
        again.setsockopt(SOL, socket.SO_REUSEADDR, 1)
        await again.bind(("", 6000))
        assert again.getsockopt(SOL, socket.SO_REUSEADDR) == 1
        listener.close()
        nursery.cancel_scope.cancel()


async def _connect_to(client, listener_sock: UserSocket):  # type: ignore[no-untyped-def]
    """Listen on an already bound server socket and connect to it: ((accepted, client))."""
    listener_sock.listen(1)
    sock = client.socket()
    await sock.connect((SERVER_ADDR, listener_sock.getsockname()[1]))
    accepted, _ = await listener_sock.accept()
    listener_sock.close()
    return (accepted, sock), None


async def test_errnos_of_an_unconnected_socket(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        sock = client.socket()
        with pytest.raises(OSError) as caught:
            sock.getpeername()
        assert caught.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as caught:
            await sock.recv(10)
        assert caught.value.errno == errno.ENOTCONN
        with pytest.raises(BrokenPipeError):  # Linux: send on an unconnected TCP socket
            await sock.send(b"x")
        with pytest.raises(OSError) as caught:
            sock.shutdown(socket.SHUT_WR)
        assert caught.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as caught:
            await sock.accept()
        assert caught.value.errno == errno.EINVAL
        with pytest.raises(OSError) as caught:
            sock.getsockopt(TCP, socket.TCP_FASTOPEN)
        assert caught.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError) as caught:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        assert caught.value.errno == errno.ENOPROTOOPT
        sock.close()
        assert sock.fileno() == -1
        with pytest.raises(OSError) as caught:
            await sock.recv(1)
        assert caught.value.errno == errno.EBADF
        nursery.cancel_scope.cancel()


async def test_connect_refused_blocking_and_nonblocking_with_so_error(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        sock = client.socket()
        with pytest.raises(ConnectionRefusedError) as caught:
            await sock.connect((SERVER_ADDR, 81))
        assert caught.value.errno == errno.ECONNREFUSED
        assert sock.getsockopt(SOL, socket.SO_ERROR) == 0  # connect reported it already
        # non-blocking: EINPROGRESS, then writable, then SO_ERROR (once)
        sock2 = client.socket()
        with pytest.raises(BlockingIOError) as caught_nb:
            sock2.start_connect((SERVER_ADDR, 81))
        assert caught_nb.value.errno == errno.EINPROGRESS
        with pytest.raises(OSError) as caught:
            sock2.start_connect((SERVER_ADDR, 81))
        assert caught.value.errno == errno.EALREADY
        await sock2.wait_writable()
        assert sock2.getsockopt(SOL, socket.SO_ERROR) == errno.ECONNREFUSED
        assert sock2.getsockopt(SOL, socket.SO_ERROR) == 0
        nursery.cancel_scope.cancel()


async def test_a_silent_address_times_out_with_etimedout(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery, client_config=TcpConfig(syn_retries=2))
        sock = client.socket()
        start = trio.current_time()
        with pytest.raises(TimeoutError) as caught:
            await sock.connect(("10.0.0.99", 80))  # nobody there: the SYNs go unanswered
        assert caught.value.errno == errno.ETIMEDOUT
        assert 6 <= trio.current_time() - start < 10  # 1 + 2 + 4 s (RFC 6298 backoff)
        nursery.cancel_scope.cancel()


async def test_reset_is_reported_once_then_epipe_and_eof(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await socket_pair(client, server)
        await a.send(b"unread")
        await settle()
        b.close()  # unread data: RST (RFC 1122 4.2.2.13)
        await settle()
        assert a.is_readable()
        assert a.getsockopt(SOL, socket.SO_ERROR) == errno.ECONNRESET  # pending, no call needed
        assert await a.recv(10) == b""  # reported once: then EOF
        with pytest.raises(BrokenPipeError):
            await a.send(b"more")
        nursery.cancel_scope.cancel()


async def test_recv_reports_econnreset(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await socket_pair(client, server)
        b.setsockopt(SOL, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert b.getsockopt(SOL, socket.SO_LINGER, 8) == struct.pack("ii", 1, 0)
        b.close()  # SO_LINGER {1, 0}: ABORT, RST at once, no TIME-WAIT
        with pytest.raises(ConnectionResetError) as caught:
            await a.recv(10)
        assert caught.value.errno == errno.ECONNRESET
        assert server.connections() == [] and client.connections() == []
        nursery.cancel_scope.cancel()


async def test_shutdown_wr_sends_fin_and_send_then_epipes(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await socket_pair(client, server)
        await a.send(b"last words")
        a.shutdown(socket.SHUT_WR)
        assert a.did_shutdown_SHUT_WR
        assert await b.recv(100) == b"last words"
        assert await b.recv(100) == b""  # our FIN
        with pytest.raises(BrokenPipeError):
            await a.send(b"x")
        await b.send(b"still open that way")  # a half-close: we can still read
        assert await a.recv(100) == b"still open that way"
        b.close()
        assert await a.recv(100) == b""
        a.close()
        await settle()
        assert [row.state for row in client.connections()] == [State.TIME_WAIT]
        nursery.cancel_scope.cancel()


async def test_shut_rd_then_close_with_unread_data_sends_rst(autojump_clock: MockClock) -> None:
    """RFC 9293 3.10.4 / RFC 1122 4.2.2.13: data that arrives after SHUT_RD and is
    never read makes close() an abort."""
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await socket_pair(client, server)
        b.shutdown(socket.SHUT_RD)
        assert await b.recv(10) == b""  # reading is over
        await a.send(b"nobody reads this")
        await settle()
        assert b.readable_bytes() == len(b"nobody reads this")
        b.close()
        with pytest.raises(ConnectionResetError):
            await a.recv(10)
        nursery.cancel_scope.cancel()


async def test_shut_rdwr(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await socket_pair(client, server)
        a.shutdown(socket.SHUT_RDWR)
        assert await a.recv(10) == b""
        assert await b.recv(10) == b""  # the FIN
        with pytest.raises(OSError) as caught:
            a.shutdown(7)
        assert caught.value.errno == errno.EINVAL
        nursery.cancel_scope.cancel()


async def test_so_rcvbuf_and_so_sndbuf_size_the_buffers(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        listener = await listening(server, SO_RCVBUF=8192)
        assert listener.getsockopt(SOL, socket.SO_RCVBUF) == 16384  # doubled, as Linux
        sock = client.socket()
        sock.setsockopt(SOL, socket.SO_SNDBUF, 4096)
        await sock.connect((SERVER_ADDR, PORT))
        accepted, _ = await listener.accept()
        assert accepted.info().rcv_wnd <= 8192
        sent = 0
        with trio.move_on_after(5):
            while True:
                sent += await sock.send(b"x" * 100_000)
        # what left: the peer's 8 KiB window; what waits: our 4 KiB send buffer
        assert sent <= 8192 + 4096
        assert sock.unsent_bytes() <= 8192 + 4096
        assert accepted.readable_bytes() <= 8192
        assert sock.getsockopt(SOL, socket.SO_SNDBUF) == 8192
        nursery.cancel_scope.cancel()


async def test_tcp_maxseg_nodelay_and_info(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        await listening(server)
        sock = client.socket()
        sock.setsockopt(TCP, socket.TCP_MAXSEG, 536)
        assert sock.getsockopt(TCP, socket.TCP_MAXSEG) == 536
        with pytest.raises(OSError) as caught:
            sock.setsockopt(TCP, socket.TCP_MAXSEG, 10)
        assert caught.value.errno == errno.EINVAL
        await sock.connect((SERVER_ADDR, PORT))
        assert sock.getsockopt(TCP, socket.TCP_NODELAY) == 0
        sock.setsockopt(TCP, socket.TCP_NODELAY, 1)
        assert sock.getsockopt(TCP, socket.TCP_NODELAY) == 1
        info = sock.getsockopt(TCP, socket.TCP_INFO)
        assert isinstance(info, TcbInfo) and info.state is State.ESTABLISHED
        await settle()  # the handshake's last ACK reaches the server
        server_side = next(r for r in server.connections() if r.state is State.ESTABLISHED)
        # our SYN's MSS option told the peer; both lose the 12 bytes of timestamps
        assert server_side.mss == 536 - 12
        assert sock.getsockopt(TCP, socket.TCP_MAXSEG, 4) == struct.pack("i", 536 - 12)
        nursery.cancel_scope.cancel()


async def test_keepalive_options_time_out_a_vanished_peer(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, server_link = await start_stacks(nursery)
        a, _b = await socket_pair(client, server)
        a.setsockopt(SOL, socket.SO_KEEPALIVE, 1)
        a.setsockopt(TCP, socket.TCP_KEEPIDLE, 10)
        a.setsockopt(TCP, socket.TCP_KEEPINTVL, 2)
        a.setsockopt(TCP, socket.TCP_KEEPCNT, 3)
        assert [a.getsockopt(TCP, o) for o in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL,
                                                 socket.TCP_KEEPCNT)] == [10, 2, 3]
        with pytest.raises(OSError) as caught:
            a.setsockopt(TCP, socket.TCP_KEEPCNT, 1)  # MUST-29: one probe proves nothing
        assert caught.value.errno == errno.EINVAL
        await server_link.aclose()  # the peer vanishes without a word
        start = trio.current_time()
        with pytest.raises(TimeoutError) as timed_out:
            await a.recv(10)
        assert timed_out.value.errno == errno.ETIMEDOUT
        assert 10 + 2 * 2 <= trio.current_time() - start <= 10 + 2 * 3 + 1
        nursery.cancel_scope.cancel()


async def test_cancelled_recv_and_accept_lose_nothing_and_cancelled_connect_closes(
    autojump_clock: MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        listener = await listening(server)
        with trio.move_on_after(1):
            await listener.accept()
        sock = client.socket()
        await sock.connect((SERVER_ADDR, PORT))
        accepted, peer = await listener.accept()  # still usable
        assert peer == sock.getsockname()
        with trio.move_on_after(1):
            await accepted.recv(10)
        await sock.send(b"kept")
        assert await accepted.recv(10) == b"kept"
        silent = client.socket()
        with trio.move_on_after(0.5):
            await silent.connect(("10.0.0.99", 80))
        assert silent.mode is Mode.CLOSED  # as trio's own socket
        nursery.cancel_scope.cancel()


async def test_one_task_per_direction(autojump_clock: MockClock) -> None:
    outcome: list[type[BaseException]] = []

    async def reader(sock: UserSocket) -> None:
        try:
            await sock.recv(10)
        except trio.ClosedResourceError as e:  # what trio's socket raises to a waiter
            outcome.append(type(e))

    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, _b = await socket_pair(client, server)
        nursery.start_soon(reader, a)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await a.recv(10)
        a.close()  # wakes the waiting task
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == [trio.ClosedResourceError]
        nursery.cancel_scope.cancel()


async def test_tcp_user_timeout_is_stored_and_read_back(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, _ = await start_stacks(nursery)
        sock = client.socket()
        sock.setsockopt(TCP, socket.TCP_USER_TIMEOUT, 5000)
        assert sock.getsockopt(TCP, socket.TCP_USER_TIMEOUT) == 5000
        assert sock._config().user_timeout == 5.0
        nursery.cancel_scope.cancel()


async def test_tcp_user_timeout_gives_up_on_unacknowledged_data(
    autojump_clock: MockClock,
) -> None:
    """RFC 5482 / tcp(7): data unacknowledged for TCP_USER_TIMEOUT ms ends the connection
    with ETIMEDOUT, long before max_retries (15) would."""
    async with trio.open_nursery() as nursery:
        client, server, _, server_link = await start_stacks(nursery)
        a, _b = await socket_pair(client, server)
        a.setsockopt(TCP, socket.TCP_USER_TIMEOUT, 5000)
        await server_link.aclose()  # the peer vanishes
        start = trio.current_time()
        await a.send(b"never acknowledged")
        with pytest.raises(TimeoutError) as caught:
            await a.recv(10)
        assert caught.value.errno == errno.ETIMEDOUT
        # RTOs fire at 1, 3 and 7 s (RFC 6298 backoff): the first one past 5 s gives up
        assert 5 <= trio.current_time() - start < 8
        nursery.cancel_scope.cancel()


async def test_timestamps_are_the_stacks_switch_not_a_socket_option(
    autojump_clock: MockClock,
) -> None:
    """As Linux's net.ipv4.tcp_timestamps: the stack's TcpConfig(timestamps=...) decides
    for every socket on it (TCP_INFO's ts says what the SYNs agreed); there is no socket
    option to turn them off (Linux's TCP_TIMESTAMP, 24, reads or sets the clock in
    repair mode; it is not one here: ENOPROTOOPT)."""
    for client_config, agreed in ((TcpConfig(timestamps=False), False), (None, True)):
        async with trio.open_nursery() as nursery:
            client, server, _, _ = await start_stacks(nursery, client_config=client_config)
            sock, accepted = await socket_pair(client, server)
            assert sock.getsockopt(TCP, socket.TCP_INFO).ts is agreed
            assert accepted.getsockopt(TCP, socket.TCP_INFO).ts is agreed  # the server offers
            with pytest.raises(OSError) as caught:
                sock.setsockopt(TCP, getattr(socket, "TCP_TIMESTAMP", 24), 0)
            assert caught.value.errno == errno.ENOPROTOOPT
            nursery.cancel_scope.cancel()


async def test_tcp_congestion_names_the_controller_before_connect(
    autojump_clock: MockClock,
) -> None:
    """TCP_CONGESTION as Linux takes it: a name in bytes, NUL-padded when read back; an
    unknown name is ENOENT. Set before connect or listen, it is the connection's
    TcpConfig(congestion=...); on an open socket, EISCONN."""
    congestion = getattr(socket, "TCP_CONGESTION", 13)
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        listener = await listening(server)
        sock = client.socket()
        assert sock.getsockopt(TCP, congestion, 16) == b"reno".ljust(16, b"\0")  # NewReno
        sock.setsockopt(TCP, congestion, b"cubic")
        assert sock.getsockopt(TCP, congestion, 16) == b"cubic".ljust(16, b"\0")
        assert sock.getsockopt(TCP, congestion, 5) == b"cubic"
        for name in (b"bbr", b"", b"cubic2"):
            with pytest.raises(OSError) as caught:
                sock.setsockopt(TCP, congestion, name)
            assert caught.value.errno == errno.ENOENT
        await sock.connect((SERVER_ADDR, PORT))
        # now read from the connection's own TcpConfig, the controller it runs
        assert sock.getsockopt(TCP, congestion, 16).rstrip(b"\0") == b"cubic"
        with pytest.raises(OSError) as caught:
            sock.setsockopt(TCP, congestion, b"reno")
        assert caught.value.errno == errno.EISCONN
        with pytest.raises(OSError) as caught:
            listener.setsockopt(TCP, congestion, b"cubic")
        assert caught.value.errno == errno.EISCONN
        other = client.socket()
        other.setsockopt(TCP, congestion, b"newreno\0")  # our own name, NUL-terminated
        assert other.getsockopt(TCP, congestion, 16).rstrip(b"\0") == b"reno"
        nursery.cancel_scope.cancel()
