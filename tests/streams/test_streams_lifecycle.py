"""Opening, closing and timing out through the public API, in virtual time (autojump_clock)."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing
from streams_helpers import SERVER_ADDR, connect_pair, start_stacks

from userstack import TcpConfig, TcpStream
from userstack.observe.hooks import Direction
from userstack.tcp.errors import ConnectionFailed
from userstack.tcp.events import ErrorReason
from userstack.tcp.info import TimerKind
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint


class Recorder:
    """An Observer that keeps every state change with its time, and counts packets."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, State, State]] = []
        self.packets = {Direction.IN: 0, Direction.OUT: 0}

    def packet(self, direction: Direction, packet: bytes, now: float) -> None:
        self.packets[direction] += 1

    def state_changed(
        self, local: Endpoint, remote: Endpoint, old: State, new: State, now: float
    ) -> None:
        self.changes.append((now, old, new))

    def when(self, new: State) -> float:
        [t] = [t for t, _, state in self.changes if state is new]
        return t


async def test_time_wait_lasts_exactly_2msl(autojump_clock: trio.testing.MockClock) -> None:
    msl = 30.0
    recorder = Recorder()
    config = TcpConfig(msl=msl)
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(
            nursery, client_config=config, server_config=config, observer=recorder
        )
        a, b = await connect_pair(client, server)
        await a.send_all(b"bye")
        await a.aclose()  # active close; returns at once, the TCB lives on
        assert [row.state for row in client.connections()] in (
            [State.FIN_WAIT_1],
            [State.FIN_WAIT_2],
        )
        assert await b.receive_some() == b"bye"
        assert await b.receive_some() == b""
        await b.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert [row.state for row in client.connections()] == [State.TIME_WAIT]
        assert server.connections() == []  # LAST-ACK -> CLOSED, and the TCB is gone
        entered = recorder.when(State.TIME_WAIT)
        await trio.sleep_until(entered + 2 * msl - 0.001)
        assert [row.state for row in client.connections()] == [State.TIME_WAIT]
        await trio.sleep_until(entered + 2 * msl + 0.001)
        assert client.connections() == []
        assert recorder.when(State.CLOSED) == pytest.approx(entered + 2 * msl)
        assert recorder.packets[Direction.IN] > 0 and recorder.packets[Direction.OUT] > 0
        nursery.cancel_scope.cancel()


async def test_vanished_peer_breaks_send_all_after_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = TcpConfig(max_retries=8)
    async with trio.open_nursery() as nursery:
        client, server, _, server_link = await start_stacks(nursery, client_config=config)
        a, b = await connect_pair(client, server)
        await a.send_all(b"hello")
        assert await b.receive_some() == b"hello"
        await server_link.aclose()  # the server's host is gone: nothing comes back any more
        start = trio.current_time()
        with pytest.raises(trio.BrokenResourceError) as caught:
            while True:
                await a.send_all(b"x" * 10_000)
        elapsed = trio.current_time() - start
        cause = caught.value.__cause__  # as trio.SocketStream: from the kernel's errno
        assert isinstance(cause, TimeoutError) and cause.errno == errno.ETIMEDOUT
        core = cause.__cause__
        assert isinstance(core, ConnectionFailed) and core.reason is ErrorReason.TIMED_OUT
        # RTO 1 s doubling (RFC 6298 5.5): 1+2+...+64+60 s for 8 retransmissions, give or take
        assert 100 < elapsed < 400, elapsed
        assert client.connections() == []
        with pytest.raises(trio.BrokenResourceError):  # stays broken
            await a.send_all(b"more")
        with pytest.raises(trio.BrokenResourceError):
            await a.receive_some()
        await a.aclose()
        nursery.cancel_scope.cancel()


async def test_connection_refused(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        with pytest.raises(ConnectionRefusedError) as caught:
            await client.open_tcp_stream(SERVER_ADDR, 9)
        assert caught.value.errno == errno.ECONNREFUSED
        assert server.counters.rst_sent == 1
        assert client.connections() == []
        nursery.cancel_scope.cancel()


async def test_connect_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, server_link = await start_stacks(
            nursery, client_config=TcpConfig(syn_retries=3)
        )
        await server_link.aclose()
        start = trio.current_time()
        with pytest.raises(TimeoutError) as caught:
            await client.open_tcp_stream(SERVER_ADDR, 80)
        assert caught.value.errno == errno.ETIMEDOUT
        assert 7 <= trio.current_time() - start <= 30  # 1 + 2 + 4 s of retries, then 8 s more
        assert client.connections() == []
        nursery.cancel_scope.cancel()


async def test_cancelled_connect_aborts(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, _, _, server_link = await start_stacks(nursery)
        await server_link.aclose()
        with trio.move_on_after(0.5):
            await client.open_tcp_stream(SERVER_ADDR, 80)
        assert client.connections() == []
        nursery.cancel_scope.cancel()


async def test_aclose_with_unread_data_resets(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)
        await a.send_all(b"unread")
        await trio.testing.wait_all_tasks_blocked()
        await b.aclose()  # RFC 1122 4.2.2.13: unread data -> RST, not FIN
        with pytest.raises(trio.BrokenResourceError) as caught:
            await a.receive_some()
        cause = caught.value.__cause__
        assert isinstance(cause, ConnectionResetError) and cause.errno == errno.ECONNRESET
        assert isinstance(cause.__cause__, ConnectionFailed)
        assert cause.__cause__.reason is ErrorReason.CONNECTION_RESET
        assert client.connections() == server.connections() == []
        nursery.cancel_scope.cancel()


async def test_aclose_forcefully_still_closes_with_a_fin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """As trio's SocketStream: the CLOSE happens before the (cancelled) checkpoint, so a
    cancelled aclose is a graceful close, not an ABORT."""
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)
        await a.send_all(b"last words")
        await trio.aclose_forcefully(a)
        assert a.state in (State.FIN_WAIT_1, State.FIN_WAIT_2)
        assert await b.receive_some() == b"last words"
        assert await b.receive_some() == b""  # EOF: a FIN, not a reset
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x")
        nursery.cancel_scope.cancel()


async def test_serve_tcp_handler_that_returns_without_closing_sends_fin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """serve_tcp closes a returning handler's stream with trio.aclose_forcefully: the
    peer sees the handler's data and then EOF, not a reset."""

    async def handler(stream: TcpStream) -> None:
        await stream.send_all(b"hello and goodbye")  # and return, without closing

    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        await nursery.start(server.serve_tcp, handler, 7)
        stream = await client.open_tcp_stream(SERVER_ADDR, 7)
        received = b""
        while chunk := await stream.receive_some():
            received += chunk
        assert received == b"hello and goodbye"
        assert stream.state is State.CLOSE_WAIT
        assert client.counters.rst_ignored == 0
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_stream_attributes_and_nodelay(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)
        assert a.remote_address == b.local_address == Endpoint(server.address, 80)
        assert a.local_address == b.remote_address
        assert a.state is b.state is State.ESTABLISHED
        assert a.nodelay is False
        a.nodelay = True
        assert a.nodelay is True
        assert a.info().state is State.ESTABLISHED
        rows = {(r.local, r.remote): r.state for r in client.connections()}
        assert rows == {(a.local_address, a.remote_address): State.ESTABLISHED}
        nursery.cancel_scope.cancel()


class _CountOut:
    """An observer that counts the packets a stack sends."""

    def __init__(self) -> None:
        self.sent = 0

    def packet(self, direction: Direction, packet: bytes, now: float) -> None:
        self.sent += direction is Direction.OUT

    def state_changed(self, *args: object) -> None:
        pass


async def test_turning_nagle_off_releases_held_data_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = _CountOut()
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery, observer=counter)
        a, b = await connect_pair(client, server)
        await a.send_all(b"x")  # out at once; the peer, not reading, delays its ACK (200 ms)
        await a.send_all(b"y")  # Nagle holds it: a small segment is unacknowledged
        await trio.sleep(0.05)
        held = counter.sent
        a.nodelay = True
        await trio.sleep(0.05)  # still before the peer's delayed ACK
        assert counter.sent == held + 1  # "y" left on its own
        assert await b.receive_some() == b"xy"
        nursery.cancel_scope.cancel()


async def test_keepalive_switched_on_per_stream_probes_after_the_idle_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = _CountOut()
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(
            nursery, client_config=TcpConfig(keepalive_idle=10.0), observer=counter
        )
        a, _b = await connect_pair(client, server)
        assert a.keepalive is False  # off by default (RFC 9293 3.8.4 MUST-25)
        await trio.sleep(60.0)
        quiet = counter.sent
        a.keepalive = True
        assert a.info().timer is TimerKind.KEEPALIVE
        await trio.sleep(10.5)
        assert counter.sent > quiet  # the probe went out
        assert a.state is State.ESTABLISHED  # and was answered
        a.keepalive = False
        probes = counter.sent
        await trio.sleep(60.0)
        assert counter.sent == probes
        nursery.cancel_scope.cancel()


async def test_listener_closes_cleanly_and_refuses_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        [listener] = await server.open_tcp_listeners(0)
        port = listener.local_address.port
        assert [(r.state, r.local.port) for r in server.connections()] == [(State.LISTEN, port)]

        async def accept_expecting_closed() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await listener.accept()

        nursery.start_soon(accept_expecting_closed)
        await trio.testing.wait_all_tasks_blocked()
        await listener.aclose()
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ConnectionRefusedError):
            await client.open_tcp_stream(SERVER_ADDR, port)
        nursery.cancel_scope.cancel()


async def test_send_eof_with_unread_data_is_a_half_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery)
        a, b = await connect_pair(client, server)
        await a.send_all(b"not read yet")
        await trio.testing.wait_all_tasks_blocked()
        await b.send_eof()  # shutdown(SHUT_WR): no RST, b still reads
        assert await a.receive_some() == b""
        assert await b.receive_some() == b"not read yet"
        await a.send_all(b" and more")
        assert await b.receive_some() == b" and more"
        assert (a.state, b.state) == (State.CLOSE_WAIT, State.FIN_WAIT_2)
        nursery.cancel_scope.cancel()
