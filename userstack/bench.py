"""`scripts/bench`: userstack against the kernel's own TCP, measured the same way.

Everything runs in private network namespaces the bench makes and removes:

- userstack: this process moves into a new namespace (userstack.netns), creates a TUN
  (kernel 10.0.0.1/24 and fd00::1/64, stack 10.0.0.2 and fd00::2, MTU 1500, offload on
  where the kernel accepts it: TSO4 and TSO6) and runs the stack here, under trio, with
  the bench server on it; then the bulk transfers again without offload, at MTU 1500 and
  at MTU 9000 (the `variants`);
- kernel: the same bench server, on trio's kernel sockets, in a second namespace
  (`unshare -n`), reached over a veth pair (MTU 1500, 10.1.0.0/24 and fd01::/64): kernel
  TCP at both ends.

The client is always a separate process on kernel sockets (so the stack under test has
this process to itself), and it is the same program in both runs. It measures:

- bulk in / bulk out: SIZE bytes to the server / from the server, MB/s (10^6 bytes/s)
  from connect to the last byte; both ends hash what they sent and received (sha256)
  and the run fails if the digests differ; both again over IPv6 (the `6` rows), where
  the TUN's super-segments each way are counted too, since with TSO6 refused the kernel
  would cut its IPv6 segments before they came up and nothing else would say so;
- connections/s: connect, a small request, the answer, close; repeated;
- 1-byte round trip: one connection (TCP_NODELAY), 1 byte there and 1 byte back,
  repeated; median and p99 in microseconds.

Last, what explanations cost the core (bench_why.py: off, on, and without the decision
lines at all; no network, CPU time); `--why-only` runs that table alone.

The bench protocol is one line per connection, then the exchange:
  `sink N`   the client sends N bytes; the server answers their sha256 (hex, newline)
  `source N` the server sends N bytes, then their sha256 (hex, newline)
  `echo`     the server echoes until EOF
  `hello`    the server answers `ok`, then waits for the client's FIN
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from functools import partial
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any

import trio

from . import bench_why
from .control import fetch_table, queue_path, serve_control
from .netns import NamespaceError, enter_private_netns

PORT = 5001
MTU = 1500
CHUNK = 64 * 1024
TUN_HOST = IPv4Interface("10.0.0.1/24")
STACK_ADDR = IPv4Address("10.0.0.2")
TUN_HOST6 = IPv6Interface("fd00::1/64")
STACK_ADDR6 = IPv6Address("fd00::2")
VETH_CLIENT = IPv4Interface("10.1.0.1/24")
VETH_SERVER = IPv4Interface("10.1.0.2/24")
VETH_CLIENT6 = IPv6Interface("fd01::1/64")
VETH_SERVER6 = IPv6Interface("fd01::2/64")
VETH_NAMES = ("usbench0", "usbench1")
CLIENT_TIMEOUT = 30.0  # seconds a client socket waits for anything before giving up
DIGEST_LINE = 65  # 64 hex digits and a newline

# The bytes every sender sends: 1 MiB of fixed pseudo-random bytes, over and over.
PATTERN = random.Random(0x05EB).randbytes(1 << 20)

IPV6 = "6"  # the suffix of the IPv6 rows' keys: bulk_in6_MBps
BULK = ("bulk_in", "bulk_out")  # the clients of the bulk rows, in the order they run
METRICS = (  # key, row label, better when higher
    ("bulk_in_MBps", "bulk kernel -> server   MB/s", True),
    ("bulk_out_MBps", "bulk server -> kernel   MB/s", True),
    (f"bulk_in{IPV6}_MBps", "IPv6 kernel -> server   MB/s", True),
    (f"bulk_out{IPV6}_MBps", "IPv6 server -> kernel   MB/s", True),
    ("connections_per_s", "connections/s", True),
    ("rtt_median_us", "1-byte round trip median us", False),
    ("rtt_p99_us", "1-byte round trip p99    us", False),
)


class BenchError(RuntimeError):
    """A measurement went wrong (digest mismatch, a peer failed): the run is void."""


def pattern_chunks(n: int) -> list[memoryview]:
    """n bytes of PATTERN as CHUNK-sized views (no copies)."""
    view, chunks, offset = memoryview(PATTERN), [], 0
    while n > 0:
        size = min(n, CHUNK, len(PATTERN) - offset)
        chunks.append(view[offset:offset + size])
        offset = (offset + size) % len(PATTERN)
        n -= size
    return chunks


# ---- the server: one trio handler, over userstack streams or kernel sockets -------------


async def read_line(stream: trio.abc.ReceiveStream) -> tuple[bytes, bytes]:
    """The first line (without its newline) and whatever arrived after it."""
    data = b""
    while b"\n" not in data:
        chunk = await stream.receive_some(CHUNK)
        if not chunk:
            raise trio.BrokenResourceError("EOF before the request line")
        data += chunk
    line, rest = data.split(b"\n", 1)
    return line, rest


async def serve_one(stream: trio.abc.Stream) -> None:
    """The bench server's side of one connection (see the module docstring)."""
    set_nodelay = getattr(stream, "set_nodelay", None)  # trio's sockets have it on already
    if set_nodelay is not None:
        set_nodelay(True)
    async with stream:
        try:
            line, rest = await read_line(stream)
            command, _, arg = line.partition(b" ")
            if command == b"sink":
                digest, left = hashlib.sha256(rest), int(arg) - len(rest)
                while left > 0:
                    chunk = await stream.receive_some(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    left -= len(chunk)
                await stream.send_all(digest.hexdigest().encode() + b"\n")
            elif command == b"source":
                digest = hashlib.sha256()
                for chunk in pattern_chunks(int(arg)):
                    digest.update(chunk)
                    await stream.send_all(chunk)
                await stream.send_all(digest.hexdigest().encode() + b"\n")
            elif command == b"echo":
                if rest:
                    await stream.send_all(rest)
                while data := await stream.receive_some(CHUNK):
                    await stream.send_all(data)
            elif command == b"hello":
                await stream.send_all(b"ok\n")
                while await stream.receive_some(CHUNK):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def kernel_server(port: int) -> None:
    """`_server`: serve_one on kernel sockets; prints `ready` once listening."""
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_tcp, serve_one, port)
        print("ready", flush=True)


# ---- the client: blocking kernel sockets, its own process -----------------------------


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=CLIENT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, n: int, digest: Any = None) -> bytes:
    """n bytes; with a digest, hash them and keep none (bulk data)."""
    parts, left = [], n
    buf = bytearray(min(n, 1 << 20))
    view = memoryview(buf)
    while left > 0:
        got = sock.recv_into(view, min(left, len(buf)))
        if not got:
            raise BenchError(f"EOF after {n - left} of {n} bytes")
        if digest is None:
            parts.append(bytes(view[:got]))
        else:
            digest.update(view[:got])
        left -= got
    return b"".join(parts)


def client_bulk_in(host: str, port: int, size: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    start = time.perf_counter()
    with _connect(host, port) as sock:
        sock.sendall(b"sink %d\n" % size)
        for chunk in pattern_chunks(size):
            digest.update(chunk)
            sock.sendall(chunk)
        theirs = _recv_exactly(sock, DIGEST_LINE).strip().decode()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size, "ok": theirs == digest.hexdigest()}


def client_bulk_out(host: str, port: int, size: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    start = time.perf_counter()
    with _connect(host, port) as sock:
        sock.sendall(b"source %d\n" % size)
        _recv_exactly(sock, size, digest)
        seconds = time.perf_counter() - start
        theirs = _recv_exactly(sock, DIGEST_LINE).strip().decode()
    return {"seconds": seconds, "bytes": size, "ok": theirs == digest.hexdigest()}


def client_connections(host: str, port: int, count: int, limit: float) -> dict[str, Any]:
    start = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - start < limit:
        with _connect(host, port) as sock:
            sock.sendall(b"hello\n")
            if _recv_exactly(sock, 3) != b"ok\n":
                raise BenchError("bad answer to hello")
        done += 1
    return {"seconds": time.perf_counter() - start, "connections": done, "ok": done > 0}


def client_round_trips(host: str, port: int, count: int, limit: float) -> dict[str, Any]:
    samples: list[int] = []
    with _connect(host, port) as sock:
        sock.sendall(b"echo\n")
        clock = time.perf_counter_ns
        end = clock() + int(limit * 1e9)
        for _ in range(count):
            t0 = clock()
            sock.sendall(b"x")
            if sock.recv(1) != b"x":
                raise BenchError("echo lost its byte")
            t1 = clock()
            samples.append(t1 - t0)
            if t1 > end:
                break
    samples.sort()
    return {
        "round_trips": len(samples),
        "median_us": statistics.median(samples) / 1000,
        "p99_us": samples[min(len(samples) - 1, math.ceil(0.99 * len(samples)) - 1)] / 1000,
        "ok": bool(samples),
    }


CLIENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "bulk_in": client_bulk_in,
    "bulk_out": client_bulk_out,
    "connections": client_connections,
    "round_trips": client_round_trips,
}


# ---- the orchestra ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    size: int  # bytes per bulk transfer
    connections: int
    round_trips: int
    limit: float  # seconds for the connections and round-trip loops
    why_size: int = 20_000_000  # bytes per run of the explanations' table (bench_why.py)
    why_runs: int = 5  # its best of K


async def run_client(mode: str, host: str, *args: object) -> dict[str, Any]:
    argv = [sys.executable, "-m", "userstack.bench", "_client", mode, host, str(PORT),
            *map(str, args)]
    with trio.fail_after(300):
        result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                        check=False)
    if result.returncode != 0:
        raise BenchError(f"client {mode} against {host} failed:\n{result.stderr.decode()}")
    answer: dict[str, Any] = json.loads(result.stdout)
    if not answer["ok"]:
        raise BenchError(f"client {mode} against {host}: check failed: {answer}")
    return answer


Measure = Callable[[str, Plan], Awaitable[dict[str, float]]]  # against the server at a host


async def measure_bulk(
    host: str, plan: Plan, suffix: str = "", modes: tuple[str, ...] = BULK
) -> dict[str, float]:
    """The bulk rows against `host`, MB/s, keyed `bulk_in{suffix}_MBps` and so on."""
    results: dict[str, float] = {}
    for mode in modes:
        r = await run_client(mode, host, plan.size)
        results[f"{mode}{suffix}_MBps"] = r["bytes"] / r["seconds"] / 1e6
    return results


async def measure(host: str, plan: Plan) -> dict[str, float]:
    """The four measurements against the server at `host` (the same client for both)."""
    results = await measure_bulk(host, plan)
    r = await run_client("connections", host, plan.connections, plan.limit)
    results["connections_per_s"] = r["connections"] / r["seconds"]
    r = await run_client("round_trips", host, plan.round_trips, plan.limit)
    results["rtt_median_us"] = r["median_us"]
    results["rtt_p99_us"] = r["p99_us"]
    return results


@dataclass(frozen=True)
class Variant:
    """One way of running userstack's TUN."""

    label: str
    mtu: int
    offload: bool


DEFAULT = Variant("offload on, MTU 1500", MTU, True)
VARIANTS = (
    Variant("offload off, MTU 1500", MTU, False),
    Variant("offload off, MTU 9000", 9000, False),
)


@dataclass(frozen=True)
class UserstackRun:
    results: dict[str, float]
    offloaded: bool  # the TUN really had offload (the kernel may refuse it)
    super_segments6: dict[str, int]  # over the TUN in the IPv6 rows: "up" (to us), "down"


async def measure_userstack(
    plan: Plan, profile: Path | None, variant: Variant = DEFAULT, how: Measure = measure,
    *, ipv6: bool = False,
) -> UserstackRun:
    """`how` against the stack on a TUN made as `variant` says; with `ipv6`, then the bulk
    rows over IPv6 too."""
    from .link.tun import TunLink
    from .streams import open_stack
    from .tcp.config import TcpConfig

    tun = TunLink.create("usbench", host_addr=TUN_HOST, host_addr6=TUN_HOST6 if ipv6 else None,
                         mtu=variant.mtu, offload=variant.offload)
    config = TcpConfig(mss=variant.mtu - 40)
    super_segments6: dict[str, int] = {}
    try:
        async with (
            open_stack(tun, STACK_ADDR, address6=STACK_ADDR6 if ipv6 else None,
                       config=config) as stack,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(stack.serve_tcp, serve_one, PORT)
            profiler = None
            if profile is not None:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            try:
                results = await how(str(STACK_ADDR), plan)
                if ipv6:
                    up, down = tun.stats.rx_super_segments, tun.stats.tx_super_segments
                    results |= await measure_bulk(str(STACK_ADDR6), plan, IPV6)
                    super_segments6 = {"up": tun.stats.rx_super_segments - up,
                                       "down": tun.stats.tx_super_segments - down}
            finally:
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)
            nursery.cancel_scope.cancel()
    finally:
        await tun.aclose()
    return UserstackRun(results, tun.offload.segmentation, super_segments6)


async def _ip(*argv: str) -> None:
    await trio.run_process(["ip", *argv], capture_stdout=True, capture_stderr=True)


async def measure_kernel(plan: Plan, how: Measure = measure, *, ipv6: bool = False
                         ) -> dict[str, float]:
    """The same server on kernel sockets in a second namespace, over a veth pair: `how`
    against it, then with `ipv6` the bulk rows over IPv6 too."""
    argv = ["unshare", "--net", sys.executable, "-m", "userstack.bench", "_server", str(PORT)]
    client_end, server_end = VETH_NAMES
    async with AsyncExitStack() as exits:
        server = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE,
                                                  stdin=subprocess.DEVNULL)
        exits.push_async_callback(_stop, server)
        with trio.fail_after(20):
            ready = await server.stdout.receive_some(64)  # type: ignore[union-attr]
        if not ready.startswith(b"ready"):
            raise BenchError("the kernel bench server did not start")
        netns = f"/proc/{server.pid}/ns/net"
        await _ip("link", "add", client_end, "mtu", str(MTU), "type", "veth",
                  "peer", "name", server_end, "mtu", str(MTU), "netns", str(server.pid))
        exits.push_async_callback(_ip, "link", "del", client_end)
        await _ip("addr", "add", str(VETH_CLIENT), "dev", client_end)
        await _ip("-6", "addr", "add", str(VETH_CLIENT6), "dev", client_end, "nodad")
        await _ip("link", "set", client_end, "up")
        for cmd in (["addr", "add", str(VETH_SERVER), "dev", server_end],
                    ["-6", "addr", "add", str(VETH_SERVER6), "dev", server_end, "nodad"],
                    ["link", "set", server_end, "up"], ["link", "set", "lo", "up"]):
            await trio.run_process(["nsenter", f"--net={netns}", "ip", *cmd],
                                   capture_stdout=True, capture_stderr=True)
        results = await how(str(VETH_SERVER.ip), plan)
        if ipv6:
            results |= await measure_bulk(str(VETH_SERVER6.ip), plan, IPV6)
    return results


async def _stop(process: trio.Process) -> None:
    process.terminate()
    with trio.move_on_after(5):
        await process.wait()
        return
    process.kill()
    await process.wait()


async def bench(plan: Plan, profile: Path | None) -> dict[str, Any]:
    run = await measure_userstack(plan, profile, ipv6=True)
    userstack = run.results
    variants = {}
    for variant in VARIANTS:
        variants[variant.label] = (await measure_userstack(plan, None, variant,
                                                           measure_bulk)).results
    kernel = await measure_kernel(plan, ipv6=True)
    return {
        "config": {"size_bytes": plan.size, "mtu": MTU, "connections": plan.connections,
                   "round_trips": plan.round_trips, "cpus": os.cpu_count(),
                   "offload": run.offloaded, "ipv6_super_segments": run.super_segments6},
        "userstack": userstack,
        "kernel": kernel,
        "ratio": {k: userstack[k] / kernel[k] if kernel[k] else None for k in userstack},
        "variants": variants,
        "queues": await bench_queues(plan),
        "explanations": asdict(bench_why.measure(plan.why_size, plan.why_runs)),
    }


def format_report(report: dict[str, Any]) -> str:
    config = report["config"]
    tun = "(TUN, TSO)" if config["offload"] else "(TUN)"
    lines = [
        f"bulk transfers of {config['size_bytes'] / 1e6:g} MB (sha256-checked), MTU "
        f"{config['mtu']}; {config['connections']} connections; "
        f"{config['round_trips']} round trips; {config['cpus']} CPUs",
        f"{'':30} {'userstack':>12} {'kernel':>12} {'userstack/kernel':>17}",
        f"{'':30} {tun:>12} {'(veth)':>12}",
    ]
    for key, label, _ in METRICS:
        u, k, ratio = report["userstack"][key], report["kernel"][key], report["ratio"][key]
        ratio_text = "-" if ratio is None else f"{ratio:.3f}"
        lines.append(f"{label:30} {u:12.1f} {k:12.1f} {ratio_text:>17}")
    if not config["offload"]:
        lines.append("(the kernel refused TUN offload: the first column is without it)")
    else:
        supers = config["ipv6_super_segments"]
        lines.append(f"(IPv6 rows: {supers['up']} super-segments up the TUN, {supers['down']} "
                     "down" + ("" if supers["up"] else "; none up: the kernel refused TSO6")
                     + ")")
    variants = report.get("variants", {})
    if variants:
        lines.append(f"userstack without offload:     {''.join(f'{v:>24}' for v in variants)}")
        for key, label, _ in METRICS[:2]:
            row = "".join(f"{numbers[key]:24.1f}" for numbers in variants.values())
            lines.append(f"{label:30} {row}")
    return ("\n".join(lines) + "\n" + format_queues(report["queues"])
            + bench_why.format_costs(bench_why.Costs(**report["explanations"])))


# ---- multi-queue: how `serve --queues N` scales (userstack/workers.py) ----------------------

QUEUE_COUNTS = (1, 2)
PARALLEL = 4  # client threads for connections/s; parallel transfers for the bulk row
QUEUE_METRICS = (  # key, row label
    ("connections_per_s", f"connections/s, {PARALLEL} clients"),
    ("parallel_bulk_MBps", f"bulk, {PARALLEL} parallel, out MB/s"),
)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_parallel_connections(
    host: str, port: int, threads: int, count: int, limit: float
) -> dict[str, Any]:
    """`threads` threads, each a connections/s loop (connect, hello, ok, close), until they
    have made `count` connections or `limit` seconds have passed."""
    counts, errors = [0] * threads, []
    start, cpu = time.perf_counter(), _cpu_seconds()

    def loop(i: int) -> None:
        try:
            while time.perf_counter() - start < limit and sum(counts) < count:
                with _connect(host, port) as sock:
                    sock.sendall(b"hello\n")
                    if _recv_exactly(sock, 3) != b"ok\n":
                        raise BenchError("bad answer to hello")
                counts[i] += 1
        except (OSError, BenchError) as exc:
            errors.append(repr(exc))

    _run_threads(loop, threads)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "connections": sum(counts), "cpu_seconds": _cpu_seconds() - cpu,
            "errors": errors[:3], "ok": not errors and sum(counts) > 0}


def client_parallel_bulk(host: str, port: int, size: int, streams: int,
                         controls: str) -> dict[str, Any]:
    """`streams` transfers of `size` bytes from the server at once, each sha256-checked;
    `controls` (comma-separated worker control sockets, or "") places them evenly on the
    workers, as an RSS-aware client would: 4 flows hashed onto 2 queues land 2 and 2 only
    3 times in 8."""
    socks = _placed_connections(host, port, streams, [c for c in controls.split(",") if c])
    ok, errors = [False] * streams, []
    start, cpu = time.perf_counter(), _cpu_seconds()

    def transfer(i: int) -> None:
        try:
            with socks[i] as sock:
                digest = hashlib.sha256()
                sock.sendall(b"source %d\n" % size)
                _recv_exactly(sock, size, digest)
                ok[i] = _recv_exactly(sock, DIGEST_LINE).strip().decode() == digest.hexdigest()
        except (OSError, BenchError) as exc:
            errors.append(repr(exc))

    _run_threads(transfer, streams)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size * streams, "cpu_seconds": _cpu_seconds() - cpu,
            "errors": errors[:3], "ok": all(ok)}


def _run_threads(target: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _placed_connections(host: str, port: int, count: int,
                        controls: list[str]) -> list[socket.socket]:
    """`count` connections, as many on each worker as on any other (by the workers' tables)."""
    if not controls:
        return [_connect(host, port) for _ in range(count)]
    per, kept, spare = count // len(controls), {c: [] for c in controls}, []  # type: ignore[var-annotated]
    for _ in range(16 * count):
        sock = _connect(host, port)
        client_port = sock.getsockname()[1]
        owner = next(c for c in controls if any(info.remote.port == client_port
                                                for info in trio.run(fetch_table, Path(c))))
        (kept[owner] if len(kept[owner]) < per else spare).append(sock)
        if all(len(socks) == per for socks in kept.values()):
            break
    for sock in spare:
        sock.close()
    placed = [sock for socks in kept.values() for sock in socks]
    if len(placed) != per * len(controls):
        raise BenchError(f"could not place {count} connections evenly on {len(controls)} queues")
    return placed


CLIENTS.update(parallel_connections=client_parallel_connections,
               parallel_bulk=client_parallel_bulk)


async def bench_worker() -> None:
    """`_worker`: one queue's stack in `measure_queues`, with the bench server and a control
    socket (for `_placed_connections`), until SIGTERM."""
    from .streams import open_stack
    from .workers import read_spec

    spec = read_spec()
    link = spec.link()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with (
            open_stack(link, STACK_ADDR, isn_key=spec.isn_key, queue=spec.share) as stack,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(serve_control, Path(spec.control), stack.connections)
            await nursery.start(stack.serve_tcp, serve_one, PORT)
            print(f"bench: serving {STACK_ADDR}:{PORT}", file=sys.stderr, flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    await link.aclose()


def _process_cpu(pids: list[int | None]) -> float:
    """User + system seconds of these processes so far (/proc/PID/stat utime, stime)."""
    total = 0
    for pid in pids:
        if pid is not None:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far (/proc/stat): other users too."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


async def measure_parallel(host: str, plan: Plan, controls: list[Path] | None = None,
                           pids: list[int | None] | None = None) -> dict[str, float]:
    """The two parallel rows against `host`, with the cores the client, the stack's
    workers and the whole machine used meanwhile (cores = CPU seconds / wall seconds)."""
    results: dict[str, float] = {}
    runs = (("connections_per_s", "parallel_connections",
             (PARALLEL, plan.connections, plan.limit)),
            ("parallel_bulk_MBps", "parallel_bulk",
             (plan.size // PARALLEL, PARALLEL, ",".join(map(str, controls or [])))))
    for key, mode, args in runs:
        stack0, (busy0, all0) = _process_cpu(pids or []), _machine_busy()
        r = await run_client(mode, host, *args)
        stack1, (busy1, all1) = _process_cpu(pids or []), _machine_busy()
        seconds = r["seconds"]
        results[key] = (r["connections"] if "connections" in r else r["bytes"] / 1e6) / seconds
        results[f"{key}:client_cores"] = r["cpu_seconds"] / seconds
        results[f"{key}:stack_cores"] = (stack1 - stack0) / seconds if pids else math.nan
        results[f"{key}:machine_busy"] = (busy1 - busy0) / (all1 - all0)
    return results


async def measure_queues(plan: Plan, count: int) -> dict[str, float]:
    """`measure_parallel` against `count` bench workers on a `count`-queue TUN."""
    from .link.tun import TunLink
    from .workers import Supervisor

    first = TunLink.create("usbench", host_addr=TUN_HOST, mtu=MTU, queues=count)
    queues = [first] + [first.open_queue() for _ in range(count - 1)]
    workdir = Path(tempfile.mkdtemp(prefix="usbench-"))
    control = workdir / "bench.sock"
    argv = [sys.executable, "-m", "userstack.bench", "_worker"]
    supervisor = Supervisor(queues, argv, control, say=lambda m: print(f"bench: {m}",
                                                                      file=sys.stderr))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                return await measure_parallel(str(STACK_ADDR), plan,
                                              [queue_path(control, i) for i in range(count)],
                                              supervisor.pids)
            finally:
                with trio.CancelScope(shield=True):
                    await supervisor.stop()
    finally:
        for queue in queues:
            await queue.aclose()
        shutil.rmtree(workdir, ignore_errors=True)


async def bench_queues(plan: Plan) -> dict[str, Any]:
    runs = {f"{n}q": await measure_queues(plan, n) for n in QUEUE_COUNTS}
    runs["kernel"] = await measure_kernel(plan, measure_parallel)
    return runs


def format_queues(runs: dict[str, Any]) -> str:
    """The multi-queue table: each row, then the cores client / stack / machine used."""
    names = [f"{n}q" for n in QUEUE_COUNTS]
    lines = ["", "serve --queues N (workers on a multi-queue TUN); cores = CPU seconds / wall "
             "seconds: client, userstack's workers, whole machine (other users too)",
             f"{'':34}" + "".join(f"{n[:-1] + (' queue' if n == '1q' else ' queues'):>12}"
                                  for n in names)
             + f"{'ratio':>8}{'kernel':>12}"]
    for key, label in QUEUE_METRICS:
        values = [runs[n][key] for n in names]
        ratio = values[-1] / values[0] if values[0] else math.nan
        lines.append(f"{label:34}" + "".join(f"{v:12.1f}" for v in values)
                     + f"{ratio:8.2f}{runs['kernel'][key]:12.1f}")
        for part in ("client", "stack", "machine"):
            suffix = "machine_busy" if part == "machine" else f"{part}_cores"
            scale = os.cpu_count() or 1 if part == "machine" else 1
            cells = [runs[n][f"{key}:{suffix}"] * scale for n in [*names, "kernel"]]
            text = "".join(f"{c:12.2f}" for c in cells[:-1]) + f"{'':8}{cells[-1]:12.2f}"
            lines.append(f"{'  cores, ' + part:34}{text}")
        per_core = [runs[n][key] / runs[n][f"{key}:stack_cores"] for n in names]
        lines.append(f"{'  per core of the stack':34}" + "".join(f"{v:12.1f}" for v in per_core)
                     + f"{per_core[-1] / per_core[0]:8.2f}")
    return "\n".join(lines).replace("nan", "  -") + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, default=100.0, metavar="MB",
                   help="bulk transfer size in MB (default 100)")
    p.add_argument("--connections", type=int, default=2000, metavar="N",
                   help="connections for connections/s (default 2000, at most --limit s)")
    p.add_argument("--round-trips", type=int, default=10000, metavar="N",
                   help="1-byte round trips (default 10000, at most --limit s)")
    p.add_argument("--limit", type=float, default=10.0, metavar="SECONDS",
                   help="time limit of the connections and round-trip loops (default 10)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test: 2 MB, 50 connections, 200 round trips")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the results as JSON to FILE (to stdout without FILE; the "
                        "table then goes to stderr)")
    p.add_argument("--why-only", action="store_true",
                   help="only what explanations cost the core (no network: bench_why.py)")
    p.add_argument("--queues-only", action="store_true",
                   help="only the multi-queue table (serve --queues 1 and 2, the kernel)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="cProfile the stack's process during the userstack run into FILE")
    p.add_argument("--transfer", choices=BULK,
                   help="only this one transfer, to or from userstack with offload (IPv4): "
                        "what to run under a sampling profiler such as py-spy")
    return p


def _client_arg(text: str) -> int | float | str:
    """A client's argument: a number where it is one, else the text (paths)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_client"]:
        mode, host, port, *rest = argv[1:]
        numbers = [_client_arg(a) for a in rest]
        print(json.dumps(CLIENTS[mode](host, int(port), *numbers)))
        return 0
    if argv[:1] == ["_worker"]:
        from .workers import SharedClock

        trio.run(bench_worker, clock=SharedClock())
        return 0
    if argv[:1] == ["_server"]:
        trio.run(kernel_server, int(argv[1]))
        return 0
    args = _parser().parse_args(argv)
    if args.quick:
        plan = Plan(size=2_000_000, connections=50, round_trips=200, limit=5.0,
                    why_size=1_000_000, why_runs=1)
    else:
        plan = Plan(size=int(args.size * 1e6), connections=args.connections,
                    round_trips=args.round_trips, limit=args.limit)
    if args.why_only:
        sys.stdout.write(bench_why.format_costs(bench_why.measure(plan.why_size, plan.why_runs)))
        return 0
    try:
        how = enter_private_netns()
    except NamespaceError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    table_out = sys.stderr if args.json == "-" else sys.stdout
    print(f"bench: in private network namespaces ({how})", file=table_out, flush=True)
    try:
        if args.transfer:
            how = partial(measure_bulk, modes=(args.transfer,))
            run = trio.run(measure_userstack, plan, args.profile, DEFAULT, how)
            for key, value in run.results.items():
                print(f"{key} {value:.1f}", file=table_out)
            return 0
        if args.queues_only:
            report = {"queues": trio.run(bench_queues, plan)}
            table_out.write(format_queues(report["queues"]))
            print(json.dumps(report, indent=2) if args.json == "-" else "", end="")
            return 0
        report = trio.run(bench, plan, args.profile)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    table_out.write(format_report(report))
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json is not None:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"bench: JSON in {args.json}", file=table_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
