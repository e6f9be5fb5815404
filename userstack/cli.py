"""`userstack`: the command line. Argument parsing and wiring only.

    userstack serve {echo,discard,chargen,http} [--port N] [link flags]
    userstack connect HOST PORT [link flags]      netcat over the stack (like nc -N)
    userstack ss [-tulpenoaHs] [--tun NAME | --control PATH] [state NAME ...]

`serve` and `connect` create their own TUN device (--tun, default us0), give the kernel
side --host-addr and run the stack as --addr behind it. Link flags add faults in both
directions (--loss/--dup/--reorder/--corrupt probabilities, --delay milliseconds,
--seed), a pcap of what crossed the TUN (--pcap), and the trace (--trace): tcpdump-style
lines on stdout for `serve`, on stderr for `connect` (whose stdout carries the data); with
--why, under each segment, the RFC rules the core applied (observe/why.py).
Both answer `userstack ss` on a control socket (--control; see userstack.control).
Every flag is checked before anything is created (userstack.cli_args): a bad value, a
TUN name or subnet already taken gets one line that says what is valid. `connect` picks
a free TUN and subnet itself for what it is not told, so it runs beside a `serve`.

Each subcommand is one `add_<name>(subparsers)` that registers its parser and sets
`run` to a function of the parsed arguments returning the exit status; add a
subcommand by adding one such function to SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import errno
import importlib.metadata
import math
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import trio

from . import cli_args
from .apps import APPS
from .cli_args import LinkChoice, choose_link
from .cli_ss import add_ss
from .control import answers, default_path, serve_control
from .demo import add_demo
from .observe.ladder import add_ladder_parser
from .observe.plot import add_plot_parser
from .observe.trace import Tracer
from .observe.view import add_view
from .observe.why import LiveWhy, add_explain
from .tcp.config import Congestion, EcnMode, TcpConfig
from .tcp.state import State
from .wire.offload import LinkPacket
from .wire.pcap import PcapWriter
from .wire.pcapng import Fault, PcapngWriter

if TYPE_CHECKING:  # the stack and the TUN load only for serve/connect (`ss` stays light)
    from .link.base import Link
    from .streams import TcpListener, TcpStream, UserStack
    from .workers import WorkerSpec

PROG = "userstack"
CHUNK = 64 * 1024
SHUTDOWN_GRACE = 5.0  # seconds `serve` waits for FIN exchanges after SIGINT/SIGTERM
# After SIGINT/SIGTERM `serve` waits until each of our FINs is acknowledged (the peer may
# keep its own half open as long as it likes: FIN-WAIT-2 is done, for us).
_CLOSING_DONE = frozenset({State.LISTEN, State.FIN_WAIT_2, State.TIME_WAIT, State.CLOSED})


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# ---- the link and the stack, shared by serve and connect ---------------------------------


def add_link_flags(parser: argparse.ArgumentParser, *, picks_free: bool = False) -> None:
    """The flags of every command that runs a stack on its own TUN."""
    default = cli_args.DEFAULT_LINK
    free = ", or the first free usN / 10.0.N.0/24" if picks_free else ""
    parser.add_argument("--tun", type=cli_args.tun_name, metavar="NAME",
                        help=f"TUN device to create (default {default.tun}{free})")
    parser.add_argument("--addr", type=cli_args.ipv4_address, metavar="IP",
                        help=f"the stack's own IPv4 address, in --host-addr's subnet (default "
                             f"{default.addr}, or the subnet's first free host)")
    parser.add_argument("--host-addr", type=cli_args.ipv4_interface, metavar="IP/PREFIX",
                        help="the kernel's address on the TUN and the subnet routed to the "
                             f"stack (default {default.host_addr}{free})")
    parser.add_argument("--mtu", type=cli_args.mtu, default=1500,
                        help=f"TUN MTU, {cli_args.MIN_MTU}-{cli_args.TUN_MAX_MTU} (default "
                             "1500); the MSS we offer is MTU - 40")
    parser.add_argument("--addr6", type=cli_args.ipv6_address, metavar="IP6",
                        help="the stack's IPv6 address too, in --host-addr6's subnet "
                             "(e.g. fd00::2)")
    parser.add_argument("--host-addr6", type=cli_args.ipv6_interface, metavar="IP6/PREFIX",
                        help="the kernel's IPv6 address on the TUN (e.g. fd00::1/64)")
    parser.add_argument("--offload", action=argparse.BooleanOptionalAction, default=True,
                        help="TSO and checksum offload on the TUN, where the kernel accepts"
                        " it (default on)")
    parser.add_argument("--msl", type=cli_args.seconds, metavar="SECONDS",
                        help="Maximum Segment Lifetime; TIME-WAIT lasts 2*MSL (default 120)")
    parser.add_argument("--congestion", choices=[c.value for c in Congestion],
                        default=Congestion.NEWRENO.value,
                        help="congestion control: newreno (RFC 5681, the default) or cubic "
                        "(RFC 9438 with HyStart++)")
    parser.add_argument("--ecn", choices=[m.value for m in EcnMode],
                        default=EcnMode.ACCEPT.value,
                        help="ECN, RFC 3168: accept (agree when the peer asks, the default, as "
                        "Linux's tcp_ecn=2), on (ask too) or off")
    parser.add_argument("--timestamps", action=argparse.BooleanOptionalAction, default=True,
                        help="timestamps, RFC 7323 (RTT measurement, PAWS): offered in our SYN "
                        "and used if the peer's carries them too (default on, as Linux's "
                        "tcp_timestamps=1); --no-timestamps neither offers nor accepts them")
    parser.add_argument("--trace", action="store_true",
                        help="print every segment (tcpdump format) and state change")
    parser.add_argument("--why", action="store_true",
                        help="with --trace: under each segment, the RFC rules the core applied")
    parser.add_argument("--pcap", type=Path, metavar="FILE",
                        help="record every packet crossing the TUN into FILE (pcapng with "
                        "the faults' drops, duplicates and corruptions as comments when "
                        "--loss/--dup/--reorder/--corrupt/--delay are given, else pcap)")
    parser.add_argument("--control", type=cli_args.control_socket, metavar="PATH",
                        help="control socket for `userstack ss` (default per --tun)")
    faults = parser.add_argument_group("faults (both directions, seeded, between the TUN "
                                       "and the stack)")
    faults.add_argument("--loss", type=cli_args.probability, default=0.0, metavar="P",
                        help="drop each packet with probability P, 0-1 (default 0)")
    faults.add_argument("--ce", type=cli_args.probability, default=0.0, metavar="P",
                        help="congestion: mark ECN-capable packets CE, drop the others, with "
                             "probability P, 0-1 (default 0)")
    faults.add_argument("--dup", type=cli_args.probability, default=0.0, metavar="P",
                        help="deliver each packet twice with probability P, 0-1 (default 0)")
    faults.add_argument("--reorder", type=cli_args.probability, default=0.0, metavar="P",
                        help="hold each packet back behind the next with probability P, 0-1 "
                             "(default 0)")
    faults.add_argument("--corrupt", type=cli_args.probability, default=0.0, metavar="P",
                        help="flip a bit in each packet with probability P, 0-1 (default 0)")
    faults.add_argument("--delay", type=cli_args.milliseconds, default=0.0, metavar="MS",
                        help="delay every packet by MS milliseconds, >= 0 (default 0)")
    faults.add_argument("--seed", type=cli_args.seed, metavar="N",
                        help="seed for the fault generator: the same seed, the same faults "
                             "(default: random)")


def settle_link(args: argparse.Namespace, *, pick_free: bool) -> LinkChoice:
    """Check (and for `connect`, choose) the TUN and its addresses; set them on `args`."""
    choice = choose_link(args.tun, args.host_addr, args.addr, pick_free=pick_free)
    args.tun, args.host_addr, args.addr = choice.tun, choice.host_addr, choice.addr
    cli_args.check_ipv6(args.addr6, args.host_addr6, args.mtu)
    return choice


def tcp_config(args: argparse.Namespace) -> TcpConfig:
    settings = {} if args.msl is None else {"msl": args.msl}
    return TcpConfig(mss=args.mtu - 40, congestion=args.congestion, ecn=args.ecn,
                     timestamps=args.timestamps, **settings)


def control_path(args: argparse.Namespace) -> Path:
    return args.control or default_path(args.tun)


@asynccontextmanager
async def running_stack(args: argparse.Namespace, trace_out: TextIO) -> AsyncIterator[UserStack]:
    """TUN (+ pcap tap, + faults) + stack + control socket, torn down in reverse order.

    The pcap tap sits right on the TUN, so it records what really crossed it; the
    faults sit between the tap and the stack. With faults the fault link makes the
    capture instead, as pcapng: every packet as it entered the faults, and a comment on
    each one they dropped, duplicated or corrupted (`FaultCapture`); the trace prints a
    line for each of those too.
    """
    from .link.faults import FaultCapture, open_faulty_link
    from .link.pcap_tap import PcapTap
    from .link.tun import TunLink
    from .streams import open_stack

    config = tcp_config(args)
    control = control_path(args)
    if await answers(control):
        raise SystemExit(f"{PROG}: another userstack answers on {control}; pass --control PATH")
    try:
        control.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"{PROG}: cannot make the control socket's directory: {exc}") from exc
    async with AsyncExitStack() as exits:
        worker: WorkerSpec | None = getattr(args, "worker_spec", None)  # serve --queues N
        try:
            tun = worker.link() if worker else TunLink.create(
                args.tun, host_addr=args.host_addr, host_addr6=args.host_addr6, mtu=args.mtu,
                offload=args.offload,
            )
        except Exception as exc:  # pytun.Error or OSError; pytun stays inside link/tun.py
            why = "run as root" if os.geteuid() else cli_args.hint()
            raise SystemExit(f"{PROG}: cannot create TUN device {args.tun}: {exc}; {why}") from exc
        exits.push_async_callback(tun.aclose)
        link: Link = tun
        observer = Tracer(trace_out) if args.trace else None
        faulty = args.loss or args.ce or args.dup or args.reorder or args.corrupt or args.delay
        capture = None
        if args.pcap is not None:
            try:
                pcap_file = exits.enter_context(args.pcap.open("wb"))
            except OSError as exc:
                raise SystemExit(f"{PROG}: cannot write --pcap {args.pcap}: {exc}") from exc
            if faulty:
                capture = FaultCapture(PcapngWriter(pcap_file, f"{args.tun} (fault link)"))
            else:
                link = PcapTap(link, PcapWriter(pcap_file))
        if faulty:

            def on_packet(
                direction: str, packet: LinkPacket, fault: Fault | None, now: float
            ) -> None:
                if capture is not None:
                    capture.packet(direction, packet, fault, now)
                if observer is not None and fault is not None:
                    observer.fault(fault, direction, packet, now)

            link = await exits.enter_async_context(open_faulty_link(
                link, loss=args.loss, ce=args.ce, duplicate=args.dup, reorder=args.reorder,
                corrupt=args.corrupt, delay=args.delay / 1000, seed=args.seed,
                on_packet=on_packet,
            ))
        explain = None
        if observer is not None and args.why:
            tracer = observer
            explain = LiveWhy(trace_out, stamp=lambda: tracer.stamp(trio.current_time()))
        stack = await exits.enter_async_context(open_stack(
            link, args.addr, address6=args.addr6, config=config, observer=observer,
            explain=explain, isn_key=worker.isn_key if worker else None,
            queue=worker.share if worker else None,
        ))
        nursery = await exits.enter_async_context(trio.open_nursery())
        exits.callback(nursery.cancel_scope.cancel)  # runs before the nursery's exit
        await nursery.start(partial(
            serve_control, control, stack.connections, counters=stack.counters.as_dict))
        yield stack


# ---- serve ---------------------------------------------------------------------------------


def add_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve echo, discard, chargen or http on a TUN")
    p.add_argument("app", choices=sorted(APPS), help="the service to run")
    p.add_argument("--port", type=cli_args.port,
                   help="port, 1-65535 (default: echo 7, discard 9, chargen 19, http 80)")
    p.add_argument("--queues", type=cli_args.queue_count, default=1, metavar="N",
                   help="N stack processes, one per queue of a multi-queue TUN, 1-64 (default 1)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of N
    add_link_flags(p)
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """One stack, or with --queues N a supervisor of N (userstack.workers)."""
    from . import workers

    if args.worker:  # the supervisor checked the flags and made the device
        args.worker_spec = spec = workers.read_spec()
        args.control, args.pcap = Path(spec.control), spec.pcap and Path(spec.pcap)
        return trio.run(serve, args, clock=workers.SharedClock())
    choice = settle_link(args, pick_free=False)
    if args.queues > 1:
        if args.addr6 is not None:  # the queues' TUN and port slices are IPv4's for now
            raise SystemExit(f"{PROG}: --addr6 does not work with --queues yet")
        argv = [sys.executable, "-m", "userstack.cli", *args.argv, *choice.flags.split(),
                "--worker"]
        return trio.run(partial(
            workers.supervise, args.tun, args.queues, argv, host_addr=args.host_addr,
            mtu=args.mtu, offload=args.offload, control=control_path(args), pcap=args.pcap,
            trace_out=sys.stdout if args.trace else None, say=say,
        ))
    return trio.run(serve, args)


async def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then close every connection with a FIN and leave."""
    app = APPS[args.app]
    port = app.port if args.port is None else args.port
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with running_stack(args, sys.stdout) as stack:
            streams: set[TcpStream] = set()

            async def handler(stream: TcpStream) -> None:
                streams.add(stream)
                try:
                    await app.handler(stream)
                except Exception:  # one connection's bug must not take the server down
                    say(f"{args.app} handler for {stream.remote_address} failed:")
                    traceback.print_exc()
                    await stream.aclose()
                finally:
                    streams.discard(stream)

            listeners: list[TcpListener] = await stack.open_tcp_listeners(port)
            accepting = trio.CancelScope()
            async with trio.open_nursery() as handlers:
                handlers.start_soon(_accept_until, accepting, handler, listeners, handlers)
                where = " and ".join(str(listener.local_address) for listener in listeners)
                hosts = " ".join(str(a) for a in (args.host_addr, args.host_addr6) if a)
                say(f"serving {args.app} on {where} (tun {args.tun}, host {hosts}, "
                    f"control {control_path(args)})")
                async for signum in signals:
                    say(f"{signal.Signals(signum).name}: closing connections")
                    break
                accepting.cancel()
                for listener in listeners:
                    await listener.aclose()
                for stream in list(streams):
                    await stream.aclose()  # our FIN; handlers see ClosedResourceError
            await _wait_closed(stack, signals)
    return 0


async def _accept_until(
    scope: trio.CancelScope,
    handler: Callable[[TcpStream], object],
    listeners: list[TcpListener],
    handlers: trio.Nursery,
) -> None:
    with scope:
        await trio.serve_listeners(handler, listeners, handler_nursery=handlers)


async def _wait_closed(stack: UserStack, signals: AsyncIterator[int]) -> None:
    """Let the FIN exchanges finish; a second signal stops waiting."""
    async with trio.open_nursery() as nursery:
        async def second_signal() -> None:
            async for _ in signals:
                nursery.cancel_scope.cancel()

        nursery.start_soon(second_signal)
        await linger(stack)
        nursery.cancel_scope.cancel()


async def linger(stack: UserStack) -> None:
    """Wait (at most SHUTDOWN_GRACE) until every FIN we sent is acknowledged.

    Leaving open_stack stops the stack dead, so a FIN still queued or unacknowledged
    then would never reach the peer.
    """
    with trio.move_on_after(SHUTDOWN_GRACE):
        while any(info.state not in _CLOSING_DONE for info in stack.connections()):
            await trio.sleep(0.02)


# ---- connect -------------------------------------------------------------------------------


def add_connect(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("connect", help="netcat over the stack: stdin -> HOST:PORT -> stdout")
    p.add_argument("host", type=cli_args.ip_address,
                   help="the peer's IPv4 address, or (with --addr6) its IPv6 address")
    p.add_argument("port", type=cli_args.port, help="the peer's port, 1-65535")
    p.add_argument("-w", "--timeout", type=cli_args.seconds, metavar="SECONDS",
                   help="give up connecting after SECONDS (default: the SYN retries)")
    add_link_flags(p, picks_free=True)
    p.set_defaults(run=lambda args: trio.run(connect, args))


_FAILURES = {
    errno.ECONNREFUSED: "Connection refused",
    errno.ETIMEDOUT: "Connection timed out",
    errno.ECONNRESET: "Connection reset by peer",
}


async def connect(args: argparse.Namespace) -> int:
    """Active open, then copy both ways; our FIN at stdin's EOF (nc -N); done when both are."""
    told = args.tun is not None or args.host_addr is not None
    choice = settle_link(args, pick_free=True)
    if not told and choice != cli_args.DEFAULT_LINK:
        say(f"{cli_args.DEFAULT_LINK.tun} or its subnet is taken: running on {choice.flags}")
    if note := cli_args.forwarding_note(args.host, choice):
        say(note)
    async with running_stack(args, sys.stderr) as stack:
        try:
            with trio.fail_after(math.inf if args.timeout is None else args.timeout):
                stream = await stack.open_tcp_stream(args.host, args.port)
        except (OSError, trio.TooSlowError) as exc:
            code = exc.errno if isinstance(exc, OSError) else errno.ETIMEDOUT
            reason = _FAILURES.get(code, str(exc))
            say(f"connect to {args.host} port {args.port} (tcp) failed: {reason}")
            return 1
        failed: list[str] = []
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(_stdin_to_stream, stream, nursery.cancel_scope, failed)
            nursery.start_soon(_stream_to_stdout, stream, nursery.cancel_scope, failed)
        await linger(stack)
    for message in failed:
        say(message)
    return 1 if failed else 0


async def _stdin_to_stream(stream: TcpStream, scope: trio.CancelScope, failed: list[str]) -> None:
    """Blocking reads in a worker thread: stdin may be a file, a pipe or a terminal."""
    try:
        while data := await trio.to_thread.run_sync(os.read, 0, CHUNK, abandon_on_cancel=True):
            await stream.send_all(data)
        await stream.send_eof()
    except trio.BrokenResourceError as exc:
        failed.append(f"write failed: {exc}")
        scope.cancel()  # the connection is gone: stop reading the other way too


async def _stream_to_stdout(stream: TcpStream, scope: trio.CancelScope, failed: list[str]) -> None:
    try:
        while data := await stream.receive_some(CHUNK):
            await trio.to_thread.run_sync(_write_all, 1, data)
    except trio.BrokenResourceError as exc:
        failed.append(f"read failed: {exc}")
        scope.cancel()  # do not wait for stdin's EOF on a dead connection


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- main ----------------------------------------------------------------------------------

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_serve, add_connect, add_ss, add_ladder_parser, add_plot_parser, add_demo, add_explain,
    add_view,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {importlib.metadata.version('userstack')}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
