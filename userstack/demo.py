"""`userstack demo`: every state of RFC 9293's state diagram, with real kernel peers.

The demo makes its own network namespace (see userstack.netns), so it needs no setup and
touches nothing outside: a TUN device with the kernel at 10.0.0.1 and the stack at
10.0.0.2, the http app on port 80, the trace on stdout and a pcap of the TUN. Then it
tells the story in acts, each arranged so that its close has a known shape:

1. curl (the kernel, client) fetches two pages over one connection and exits: passive
   open (LISTEN -> SYN-RECEIVED -> ESTABLISHED), and the kernel closes first. The stack
   delays its ACK of that FIN, the app closes at once, so our FIN carries the ACK:
   FIN, FIN+ACK, ACK (three-way); CLOSE-WAIT -> LAST-ACK -> CLOSED.
2. The stack connects out to a kernel listener (SYN-SENT), sends a line and half-closes.
   The kernel ACKs our FIN (FIN-WAIT-1 -> FIN-WAIT-2); only then does the kernel's app
   answer and close: FIN, ACK, FIN, ACK (four-way), and we wait in TIME-WAIT.
3. Again outwards, but the kernel answers and closes first, and our app closes as soon
   as it reads the EOF: a three-way close with the stack as the passive closer.
4. Both ends close at the same moment: each FIN crosses the other (simultaneous close),
   so the stack goes FIN-WAIT-1 -> CLOSING -> TIME-WAIT.
5. TIME-WAIT runs out (2*MSL, MSL is short here) and the connections are gone.

At the end it writes one ladder diagram (SVG) per connection from the pcap and the
viewer page (`userstack view`: every segment with the RFC rules behind it, offline), and
prints which states it saw and which close shapes the capture shows.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import sys
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from .apps import APPS
from .cli_args import seconds, tun_name
from .netns import NamespaceError, enter_private_netns
from .observe.closes import close_shapes
from .observe.ladder import list_connections, render_ladder
from .observe.ss import Show, format_table
from .observe.trace import Tracer
from .observe.view import render_view
from .tcp.config import TcpConfig
from .tcp.state import State
from .wire import Endpoint, PcapWriter

if TYPE_CHECKING:  # the stack and the TUN load only when the demo runs (`userstack ss` stays light)
    from .streams import UserStack

HOST = IPv4Interface("10.0.0.1/24")  # the kernel's side of the TUN
STACK = IPv4Address("10.0.0.2")
HTTP_PORT = 80
FOUR_WAY_PORT = 7000  # act 2's kernel listener
THREE_WAY_PORT = 7001  # act 3's kernel listener
SIMULTANEOUS_PORT = 7002  # act 4's kernel listener
TIME_LIMIT = 30.0  # seconds for the whole demo, TIME-WAIT included
STEP_LIMIT = 5.0  # seconds any single wait may take

ALL_STATES = tuple(State)


class StoryTracer(Tracer):
    """The trace, plus a note of every state any connection passed through."""

    def __init__(self) -> None:
        super().__init__(sys.stdout, relative=True)
        self.seen: set[State] = set()

    def state_changed(
        self, local: Endpoint, remote: Endpoint, old: State, new: State, now: float
    ) -> None:
        self.seen.update((old, new))
        super().state_changed(local, remote, old, new, now)


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"=== {text}")


async def wait_for(predicate: Callable[[], bool], what: str) -> bool:
    """Poll until `predicate()` holds (True) or STEP_LIMIT passes (False, and say so)."""
    with trio.move_on_after(STEP_LIMIT):
        while not predicate():
            await trio.sleep(0.01)
        return True
    say(f"!!! gave up waiting for {what} after {STEP_LIMIT:g} s")
    return False


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


def show_table(stack: UserStack) -> None:
    say("$ userstack ss -tano")
    for line in format_table(stack.connections(), show=Show.ALL, timers=True).splitlines():
        say(f"  {line}")


# ---- the acts -------------------------------------------------------------------------------


async def act_curl(stack: UserStack, out: Path) -> None:
    heading("Act 1: curl fetches / and /bytes/2000 over one connection, then exits "
            "(the kernel closes first: three-way close, we pass CLOSE-WAIT and LAST-ACK)")
    argv = ["curl", "-sS", "--max-time", "10", "-w", "curl: %{http_code} %{url_effective} "
            "%{size_download} bytes\\n", "-o", str(out / "index.html"), f"http://{STACK}/",
            "-o", "/dev/null", f"http://{STACK}/bytes/2000"]
    say("$ " + shlex.join(argv))
    result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    sys.stdout.write(result.stdout.decode(errors="replace"))
    if result.returncode != 0:
        say(f"!!! curl exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    await wait_for(lambda: not _connected(stack), "the curl connection to close")


def _connected(stack: UserStack) -> list[State]:
    return [i.state for i in stack.connections() if i.state is not State.LISTEN]


async def act_four_way(stack: UserStack) -> None:
    heading(f"Act 2: the stack connects to a kernel listener on {HOST.ip}:{FOUR_WAY_PORT}, "
            "sends a line and closes first; the kernel answers only after ACKing our FIN "
            "(four-way close; SYN-SENT, FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT)")
    listeners = await trio.open_tcp_listeners(FOUR_WAY_PORT, host=str(HOST.ip))
    ours: list[trio.abc.Stream] = []

    async def kernel_side() -> None:
        async with await listeners[0].accept() as peer:
            request = await read_to_eof(peer)  # up to our FIN
            # Let the kernel's ACK of our FIN reach the stack before it closes (four-way).
            await wait_for(lambda: ours and ours[0].state is not State.FIN_WAIT_1,
                           "FIN-WAIT-2")
            await peer.send_all(b"kernel got: " + request)
        # leaving the block closes the kernel's socket: its FIN

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kernel_side)
        stream = await stack.open_tcp_stream(HOST.ip, FOUR_WAY_PORT)
        ours.append(stream)
        async with stream:
            await stream.send_all(b"hello from userstack\n")
            await stream.send_eof()  # our FIN, after the line: FIN-WAIT-1
            reply = await read_to_eof(stream)
        say(f"stack received: {reply!r}")
    await listeners[0].aclose()
    await wait_for(lambda: State.TIME_WAIT in _connected(stack), "TIME-WAIT")
    show_table(stack)


async def act_three_way(stack: UserStack) -> None:
    heading(f"Act 3: the stack connects to {HOST.ip}:{THREE_WAY_PORT}; the kernel answers "
            "and closes first, our app closes on the EOF, so our FIN carries the ACK "
            "(three-way close; CLOSE-WAIT, LAST-ACK, CLOSED)")
    listeners = await trio.open_tcp_listeners(THREE_WAY_PORT, host=str(HOST.ip))

    async def kernel_side() -> None:
        async with await listeners[0].accept() as peer:
            line = b""
            while not line.endswith(b"\n"):
                line += await peer.receive_some()
            await peer.send_all(b"kernel got: " + line)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kernel_side)
        stream = await stack.open_tcp_stream(HOST.ip, THREE_WAY_PORT)
        async with stream:
            await stream.send_all(b"hello again\n")
            reply = await read_to_eof(stream)  # ... and close at once
        say(f"stack received: {reply!r}")
    await listeners[0].aclose()
    port = stream.local_address.port
    await wait_for(lambda: not any(i.local.port == port for i in stack.connections()),
                   "the connection to close")


async def act_simultaneous(stack: UserStack) -> None:
    heading(f"Act 4: the stack connects to {HOST.ip}:{SIMULTANEOUS_PORT}; after one exchange "
            "both ends close at the same moment, their FINs cross "
            "(simultaneous close; FIN-WAIT-1, CLOSING, TIME-WAIT)")
    listeners = await trio.open_tcp_listeners(SIMULTANEOUS_PORT, host=str(HOST.ip))
    stream = await stack.open_tcp_stream(HOST.ip, SIMULTANEOUS_PORT)
    peer = await listeners[0].accept()  # the kernel finished its handshake on its own
    await listeners[0].aclose()
    await stream.send_all(b"ping\n")
    await read_exactly(peer, 5)
    await peer.send_all(b"pong\n")
    await read_exactly(stream, 5)
    # No checkpoint between these two: the kernel's FIN leaves at once, and the stack
    # is in FIN-WAIT-1 (its FIN queued) before its driver can read the kernel's FIN.
    peer.socket.shutdown(socket.SHUT_WR)
    await stream.aclose()
    async with peer:
        await read_to_eof(peer)
    await wait_for(lambda: State.CLOSING not in _connected(stack), "CLOSING to end")


async def read_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        if not chunk:
            raise trio.BrokenResourceError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


async def act_time_wait(stack: UserStack, msl: float) -> None:
    heading(f"Act 5: TIME-WAIT lasts 2*MSL = {2 * msl:g} s (RFC 9293 3.10.7.4); "
            "then the connection is deleted (CLOSED)")
    with trio.move_on_after(2 * msl + STEP_LIMIT):
        while State.TIME_WAIT in _connected(stack):
            await trio.sleep(0.05)
    show_table(stack)


# ---- the whole demo -------------------------------------------------------------------------


async def run_story(out: Path, msl: float, tun_name: str) -> set[State]:
    """The acts on a fresh TUN + stack; the pcap goes to out/demo.pcap."""
    from .link.pcap_tap import PcapTap
    from .link.tun import TunLink
    from .streams import open_stack

    tracer = StoryTracer()
    app = APPS["http"]
    tun = TunLink.create(tun_name, host_addr=HOST)
    try:
        with (out / "demo.pcap").open("wb") as pcap:
            link = PcapTap(tun, PcapWriter(pcap))
            config = TcpConfig(msl=msl)
            async with open_stack(link, STACK, config=config, observer=tracer) as stack, \
                    trio.open_nursery() as nursery:
                await nursery.start(stack.serve_tcp, app.handler, HTTP_PORT)
                say(f"stack {STACK} serving http on port {HTTP_PORT} behind TUN {tun.name} "
                    f"(kernel {HOST}); MSL {msl:g} s")
                show_table(stack)
                await act_curl(stack, out)
                await act_four_way(stack)
                await act_three_way(stack)
                await act_simultaneous(stack)
                await act_time_wait(stack, msl)
                nursery.cancel_scope.cancel()
    finally:
        await tun.aclose()
    return tracer.seen


def draw_ladders(pcap: Path, out: Path) -> list[Path]:
    paths = []
    for i, _ in enumerate(list_connections(pcap)):
        path = out / f"connection-{i}.svg"
        render_ladder(pcap, path, i)
        paths.append(path)
    return paths


async def demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        with trio.fail_after(TIME_LIMIT):
            seen = await run_story(out, args.msl, args.tun)
    except trio.TooSlowError:
        say(f"!!! the demo did not finish within {TIME_LIMIT:g} s")
        return 1
    pcap = out / "demo.pcap"
    shapes = close_shapes(pcap)
    ladders = draw_ladders(pcap, out)
    page = out / "demo.html"
    render_view(pcap, page)

    heading("What happened")
    missing = [s for s in ALL_STATES if s not in seen]
    say("states seen: " + ", ".join(s.value for s in ALL_STATES if s in seen))
    if missing:
        say("states NOT seen: " + ", ".join(s.value for s in missing))
    for (client, server), shape in shapes.items():
        say(f"close of {client} > {server}: {shape}")
    say(f"pcap: {pcap}  (tcpdump -nn -r {pcap})")
    for i, path in enumerate(ladders):
        say(f"ladder of connection {i}: {path}")
    say(f"why each segment did what it did: {page}  (open it in a browser: it needs no "
        f"network; or userstack explain {pcap})")
    say(f"page curl fetched: {out / 'index.html'}")
    wanted = {"four-way", "three-way"}
    if missing or not wanted <= set(shapes.values()):
        say("!!! the story was incomplete (see above)")
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    if shutil.which("curl") is None:
        print("userstack demo: needs curl (apt-get install curl)", file=sys.stderr)
        return 1
    try:
        how = enter_private_netns()
    except NamespaceError as exc:
        print(f"userstack demo: {exc}", file=sys.stderr)
        return 1
    say(f"userstack demo: in a private network namespace ({how}); nothing leaves it")
    return trio.run(demo, args)


def add_demo(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `demo` with the CLI's subcommands."""
    p = subparsers.add_parser(
        "demo", help="the life of TCP connections with curl and kernel sockets, traced",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"),
                   help="directory for the pcap, the ladder SVGs and the page (default demo-out)")
    p.add_argument("--msl", type=seconds, default=1.0, metavar="SECONDS",
                   help="Maximum Segment Lifetime: TIME-WAIT lasts 2*MSL (default 1)")
    p.add_argument("--tun", type=tun_name, default="us0", help="TUN device name (default us0)")
    p.set_defaults(run=run)
