"""Unmodified libraries over the TUN, in a private namespace: servers on the stack (inside
trio_network()) with kernel clients, and a stack client against a kernel server.

The kernel is 10.0.0.1 (the TUN's address), the stack 10.0.0.2. Tasks outside the
trio_network() block use the kernel's sockets (the block's choice is per task).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
import trio
import trio_websocket
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from test_sockets_libraries import BODY, app, ws_echo

from userstack import TunLink, UserStack, open_stack

pytestmark = pytest.mark.netns

KERNEL, STACK = "10.0.0.1", "10.0.0.2"


async def test_kernel_clients_against_servers_on_the_stack(netns: object) -> None:
    config = HypercornConfig()
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)

    async def hypercorn_connection(stream: trio.abc.Stream) -> None:
        await TCPServer(wrapped, config, WorkerContext(None), {}, stream)  # type: ignore[arg-type]

    link = TunLink.create(host_addr=f"{KERNEL}/24")
    async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
        with stack.trio_network():
            await nursery.start(partial(trio_websocket.serve_websocket, ws_echo, None, 8000,
                                        ssl_context=None))
            await nursery.start(trio.serve_tcp, hypercorn_connection, 8080)
        with trio.fail_after(30):
            # these tasks are outside the block: kernel sockets, through the TUN
            async with trio_websocket.open_websocket_url(f"ws://{STACK}:8000/") as ws:
                await ws.send_message(BODY)
                assert hashlib.sha256(await ws.get_message()).digest() == hashlib.sha256(
                    BODY).digest()
            async with httpx.AsyncClient() as http:
                got = await http.get(f"http://{STACK}:8080/")
                assert hashlib.sha256(got.content).digest() == hashlib.sha256(BODY).digest()
            stream = await anyio.connect_tcp(STACK, 8080)
            async with stream:
                await stream.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                assert (await stream.receive()).startswith(b"HTTP/1.1 200")
            curl = await trio.run_process(
                ["curl", "-sS", "--max-time", "10", f"http://{STACK}:8080/"],
                capture_stdout=True,
            )
            assert hashlib.sha256(curl.stdout).digest() == hashlib.sha256(BODY).digest()
        nursery.cancel_scope.cancel()


async def test_stack_clients_against_kernel_servers(netns: object) -> None:
    got = bytearray()
    done = trio.Event()

    async def collect(stream: trio.abc.Stream) -> None:  # a kernel socket's server side
        async for chunk in stream:
            got.extend(chunk)
        done.set()

    link = TunLink.create(host_addr=f"{KERNEL}/24")
    async with link, open_stack(link, STACK) as stack, trio.open_nursery() as nursery:
        # the kernel's servers, outside the block
        await nursery.start(partial(trio_websocket.serve_websocket, ws_echo, KERNEL, 8001,
                                    ssl_context=None))
        await nursery.start(partial(trio.serve_tcp, collect, 8002, host=KERNEL))
        with stack.trio_network(), trio.fail_after(30):
            async with trio_websocket.open_websocket_url(f"ws://{KERNEL}:8001/") as ws:
                await ws.send_message("over the userstack")
                assert await ws.get_message() == "over the userstack"
            stream = await anyio.connect_tcp(KERNEL, 8002)
            async with stream:
                await stream.send(BODY)
            await done.wait()
        assert hashlib.sha256(got).digest() == hashlib.sha256(BODY).digest()
        nursery.cancel_scope.cancel()


STACK6, KERNEL6 = "fd00::2", "fd00::1"


@asynccontextmanager
async def dual_stack_on_tun() -> AsyncIterator[tuple[UserStack, trio.Nursery]]:
    """The stack at 10.0.0.2 and fd00::2 on a TUN whose kernel side is 10.0.0.1 and
    fd00::1, with a nursery for its servers (cancelled on the way out)."""
    link = TunLink.create(host_addr=f"{KERNEL}/24", host_addr6=f"{KERNEL6}/64")
    async with (
        link,
        open_stack(link, STACK, address6=STACK6) as stack,
        trio.open_nursery() as nursery,
    ):
        yield stack, nursery
        nursery.cancel_scope.cancel()


async def curl(*args: str) -> bytes:
    """A kernel curl's response body (it fails the test on any error)."""
    result = await trio.run_process(
        ["curl", "-sS", "--fail", "--max-time", "20", *args], capture_stdout=True
    )
    return result.stdout


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_kernel_curl_over_ipv6_against_an_af_inet6_socket_on_the_stack(
    netns: object, tmp_path: Path
) -> None:
    """An AF_INET6 trio socket inside trio_network(), bound to the stack's IPv6 address,
    serving hypercorn's connection handler; the kernel's curl -6 downloads and uploads."""
    config = HypercornConfig()
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    upload = tmp_path / "upload"
    upload.write_bytes(BODY * 5)

    async def hypercorn_connection(stream: trio.abc.Stream) -> None:
        await TCPServer(wrapped, config, WorkerContext(None), {}, stream)  # type: ignore[arg-type]

    async with dual_stack_on_tun() as (stack, nursery):
        with stack.trio_network():
            sock = trio.socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            await sock.bind((STACK6, 8090))
            sock.listen()
            assert sock.getsockname() == (STACK6, 8090, 0, 0)
            listener = trio.SocketListener(sock)
            nursery.start_soon(trio.serve_listeners, hypercorn_connection, [listener])
        with trio.fail_after(60):
            url = f"http://[{STACK6}]:8090/"
            assert sha256(await curl("-6", url)) == sha256(BODY)
            posted = await curl("-6", "--data-binary", f"@{upload}", url)
            assert posted.decode() == sha256(BODY * 5)


async def test_hypercorns_own_serve_on_the_stack_in_both_families(netns: object) -> None:
    """hypercorn.trio.serve(app, config), unchanged, inside trio_network(): its stdlib
    listeners are the stack's (sockets/stdlib.py); the kernel's curl reaches both."""
    config = HypercornConfig()
    config.bind = [f"{STACK}:8081", f"[{STACK6}]:8082"]
    async with dual_stack_on_tun() as (stack, nursery):
        with stack.trio_network():
            binds = await nursery.start(partial(hypercorn_serve, app, config))
        assert binds == [f"http://{STACK}:8081", f"http://[{STACK6}]:8082"]
        with trio.fail_after(60):
            assert sha256(await curl(f"http://{STACK}:8081/")) == sha256(BODY)
            assert sha256(await curl("-6", f"http://[{STACK6}]:8082/")) == sha256(BODY)
            # and the kernel has no listener of its own there
            kernel = await trio.run_process(["ss", "-Hltn"], capture_stdout=True)
            assert b":8081" not in kernel.stdout and b":8082" not in kernel.stdout
