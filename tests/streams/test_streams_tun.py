"""The stack over a real TUN in a private network namespace, against the kernel's TCP.

The kernel is 10.0.0.1 (the TUN's address); the stack answers as 10.0.0.2.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from functools import partial

import pytest
import trio
from streams_helpers import pattern

from userstack import TunLink, UserStack, open_stack
from userstack.apps.simple import echo
from userstack.tcp.state import State

pytestmark = pytest.mark.netns

KERNEL, STACK = "10.0.0.1", "10.0.0.2"
SIZE = 1_000_000


async def _until(condition, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (real time: a kernel is involved) for a condition about TCB states."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def kernel_states(port: int) -> list[str]:
    """`ss -tan` states of the kernel's sockets involving `port` (run inside the namespace)."""
    out = subprocess.run(
        ["ss", "-Htan", f"( sport = :{port} or dport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines()]


async def _exchange(stream: trio.abc.HalfCloseableStream, data: bytes) -> bytes:
    """Send `data` and half-close while reading everything the other side sends back."""
    got = bytearray()

    async def send() -> None:
        await stream.send_all(data)
        await stream.send_eof()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        while chunk := await stream.receive_some(65536):
            got += chunk
    return bytes(got)


async def test_kernel_client_echoes_through_the_stack(netns: object) -> None:
    link = TunLink.create(host_addr=f"{KERNEL}/24")
    async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
        await nursery.start(partial(stack.serve_tcp, echo, 7))
        result = await trio.run_process(["ping", "-c", "2", "-W", "2", STACK], capture_stdout=True)
        assert b"2 received" in result.stdout

        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((STACK, 7))
        kernel_port = sock.getsockname()[1]
        data = pattern(SIZE, 5)
        start = time.perf_counter()
        async with trio.SocketStream(sock) as kernel:
            echoed = await _exchange(kernel, data)
        elapsed = time.perf_counter() - start
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
        # The kernel closed first (its FIN, then ours): it sits in TIME-WAIT, our TCB is gone.
        await _until(lambda: [r.state for r in stack.connections()] == [State.LISTEN], "closed")
        assert kernel_states(kernel_port) == ["TIME-WAIT"]
        assert stack.counters.icmp_echo_replies == 2
        print(f"\nkernel -> stack echo, {SIZE} bytes each way: {2 * SIZE / elapsed / 1e6:.1f} MB/s")
        nursery.cancel_scope.cancel()


async def _kernel_echo_once(listener: trio.socket.SocketType) -> None:
    sock, _ = await listener.accept()
    async with trio.SocketStream(sock) as stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
        await stream.send_eof()


async def test_stack_connects_out_to_a_kernel_listener(netns: object) -> None:
    link = TunLink.create(host_addr=f"{KERNEL}/24")
    async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
        listener = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await listener.bind((KERNEL, 9000))
        listener.listen()
        nursery.start_soon(_kernel_echo_once, listener)
        data = pattern(SIZE, 6)
        stream = await stack.open_tcp_stream(KERNEL, 9000)
        assert stream.state is State.ESTABLISHED
        start = time.perf_counter()
        echoed = await _exchange(stream, data)
        elapsed = time.perf_counter() - start
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
        await stream.aclose()
        # We closed first: our TCB waits in TIME-WAIT, the kernel's is gone (LAST-ACK -> CLOSED).
        await _until(lambda: _states(stack) == [State.TIME_WAIT], "TIME-WAIT")
        await _until(lambda: "ESTAB" not in kernel_states(9000), "kernel closed")
        assert [s for s in kernel_states(9000) if s != "LISTEN"] == []
        print(f"\nstack -> kernel echo, {SIZE} bytes each way: {2 * SIZE / elapsed / 1e6:.1f} MB/s")
        listener.close()
        nursery.cancel_scope.cancel()


def _states(stack: UserStack) -> list[State]:
    return [row.state for row in stack.connections()]
