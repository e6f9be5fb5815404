"""Unmodified libraries over the TUN, in a private namespace: servers on the stack (inside
trio_network()) with kernel clients, and a stack client against a kernel server.

The kernel is 10.0.0.1 (the TUN's address), the stack 10.0.0.2. Tasks outside the
trio_network() block use the kernel's sockets (the block's choice is per task).
"""

from __future__ import annotations

import hashlib
from functools import partial

import anyio
import httpx
import pytest
import trio
import trio_websocket
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from test_sockets_libraries import BODY, app, ws_echo

from userstack import TunLink, open_stack

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
