"""`userstack serve --queues N`: one stack process per TUN queue, and the supervisor above them.

A Python stack runs on one core; to use N cores the host runs N stacks, as user-space stacks
built for speed do (one stack per core, nothing shared on the fast path). The supervisor (the
`serve` process) creates a multi-queue TUN with N queues (`TunLink.create(queues=N)`), then
starts N worker processes and hands each one queue fd (`pass_fds`) and a `WorkerSpec` on its
stdin. The kernel steers each flow to one queue by its flow hash (and answers to the queue that
last transmitted the flow), so every worker sees whole connections:

- every worker listens on the served port and answers ping on its queue;
- each connection a worker opens gets an ephemeral port from the worker's own slice
  (`QueueShare`), so four-tuples never collide;
- all share one secret (ISNs, RFC 6528; SYN cookies) and one clock (`SharedClock`): any
  worker judges a segment as the others would;
- a segment with no TCB in its worker gets RFC 9293 3.10.7.1's RST, except one for another
  worker's ephemeral slice, which is dropped and counted (see docs/scaling.md).

The supervisor keeps every queue fd open, so a worker that dies leaves its queue attached:
the kernel keeps steering the same flows to it (they wait in the queue), and the other
workers' flows are not moved. It reports the death and restarts the worker on the same
queue; the new worker answers the dead one's connections with RST (their TCBs died with it).
A worker that dies before it served (a crash at start) is not restarted: it would only die
again. Its queue is closed instead, so the kernel steers its flows to the other queues; when
no worker is left the service exits with status 1.

SIGINT or SIGTERM to the supervisor is passed on, once, as SIGTERM to every worker (they
run in their own sessions, so a terminal's Ctrl-C reaches only the supervisor); each closes
its connections with FINs as a single `serve` does, and the supervisor closes the queues
after them, which removes the device. A worker whose supervisor vanishes sees its stdin
end and stops the same way.

What the host looks like from outside stays one host: `userstack ss` merges the workers'
tables (userstack.control), `--trace` merges their trace lines in time order, each tagged
with its queue (`TraceMerge`), and `--pcap FILE` is one pcapng file, in time order, each
packet naming its queue (`merge_captures`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import trio

from .control import queue_path
from .stack.queues import QueueShare
from .wire.offload import NO_OFFLOAD
from .wire.pcap import PcapReader
from .wire.pcapng import PcapngWriter

if TYPE_CHECKING:
    from .link.tun import TunLink

STOP_GRACE = 10.0  # seconds the supervisor waits for workers to finish their FINs
TRACE_HOLD = 0.25  # seconds a trace line waits for earlier lines from the other queues
_STAMP = re.compile(rb"^(\d\d):(\d\d):(\d\d\.\d+) ")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to know, sent as one JSON line on its stdin (not argv: the key)."""

    index: int
    count: int
    tun: str
    mtu: int
    fd: int  # the queue's fd, inherited
    offload: bool  # the device speaks virtio-net headers (TSO, checksum offload)
    key: str  # hex: the secret shared by every worker's Stack
    control: str  # this worker's control socket
    pcap: str | None  # this worker's part of the capture, merged by the supervisor

    @property
    def share(self) -> QueueShare:
        return QueueShare(self.index, self.count)

    @property
    def isn_key(self) -> bytes:
        return bytes.fromhex(self.key)

    def link(self) -> TunLink:
        from .link.tun import TunLink
        from .wire.offload import TSO

        return TunLink.from_fd(self.fd, self.tun, self.mtu, TSO if self.offload else NO_OFFLOAD)

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"


def read_spec() -> WorkerSpec:
    """In a worker: the spec from stdin; from then on, stdin's end means "stop" (SIGTERM).

    Raw reads of fd 0, never sys.stdin: a buffered reader still blocked in the watching
    thread at exit makes the interpreter's shutdown fail."""
    line = b""
    while not line.endswith(b"\n"):
        data = os.read(0, 4096)
        if not data:
            raise SystemExit("userstack: a worker's stdin ended before its spec")
        line += data
    spec = WorkerSpec(**json.loads(line))

    def stop_at_eof() -> None:  # the supervisor is gone: stop as a SIGTERM would
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_at_eof, daemon=True, name="supervisor-watch").start()
    return spec


class SharedClock(trio.abc.Clock):
    """trio's clock without its random per-process offset: CLOCK_MONOTONIC, the same in every
    worker, so their `now` agrees, and with it the clock M of every ISN (RFC 6528) and the
    time counter of every SYN cookie: a flow that lands on another queue is judged by the
    same clock as well as the same secret. (trio's offset is there to catch code that mixes
    trio's time with another clock; the workers have only this one.)"""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.monotonic()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()


# ---- the supervisor -----------------------------------------------------------------------


class WorkersFailed(RuntimeError):
    """Every worker died before it served, so none was restarted."""


@dataclass
class _Worker:
    index: int
    queue: TunLink
    generation: int = 0
    served: bool = False  # this incarnation said it serves
    given_up: bool = False  # it died before serving: not restarted
    process: subprocess.Popen[bytes] | None = None
    captures: list[Path] = field(default_factory=list)


@dataclass
class Supervisor:
    """Starts one worker per queue with `argv`, restarts the ones that die, stops them all.

    `control` is the host's control path (workers answer beside it, `queue_path`); `pcap`
    the merged capture's path (workers write parts beside it); `trace_out`, if given,
    receives the workers' stdout as time-ordered trace lines tagged with their queue.
    """

    queues: list[TunLink]
    argv: list[str]
    control: Path
    pcap: Path | None = None
    trace_out: TextIO | None = None
    say: Callable[[str], None] = print
    key: bytes = field(default_factory=lambda: os.urandom(16))
    _workers: list[_Worker] = field(init=False, default_factory=list)
    _stopping: bool = field(init=False, default=False)
    _trace_pipes: list[_TracePipe] = field(init=False, default_factory=list)
    _all_ready: trio.Event = field(init=False, default_factory=trio.Event)
    _merge: TraceMerge = field(init=False)

    def __post_init__(self) -> None:
        self._workers = [_Worker(i, q) for i, q in enumerate(self.queues)]
        self._merge = TraceMerge()

    @property
    def pids(self) -> list[int | None]:
        """Each queue's worker's pid (None while it is down)."""
        return [w.process.pid if w.process and w.process.poll() is None else None
                for w in self._workers]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the workers until `stop()` (started: once every worker serves); WorkersFailed
        if every worker died for good."""
        async with trio.open_nursery() as nursery:
            if self.trace_out is not None:
                nursery.start_soon(self._emit_trace)
            for worker in self._workers:
                nursery.start_soon(self._keep, worker, nursery)
            with trio.fail_after(30):
                await self._all_ready.wait()
            task_status.started()
        if not self._stopping:
            raise WorkersFailed("no worker left: every one died before it served")

    async def _keep(self, worker: _Worker, nursery: trio.Nursery) -> None:
        """Run queue `worker.index`'s worker; restart it when it dies, unless it died
        before it served (then it would only die again)."""
        while True:
            process = await self._start(worker, nursery)
            status = await _wait(process)
            if process.stdin is not None:
                process.stdin.close()
            if self._stopping:
                return
            how = f"signal {-status}" if status < 0 else f"status {status}"
            if not worker.served:
                self.say(f"worker {worker.index} (pid {process.pid}) died ({how}) before "
                         "it served: not restarting it; its queue is closed")
                worker.given_up = True
                await worker.queue.aclose()  # the kernel steers its flows to the others
                break
            self.say(f"worker {worker.index} (pid {process.pid}) died ({how}); restarting it")
        if all(w.given_up for w in self._workers):
            nursery.cancel_scope.cancel()  # run() raises WorkersFailed
        self._check_ready()

    def _check_ready(self) -> None:
        """Started: once every worker serves or has been given up on (and one serves)."""
        if all(w.served or w.given_up for w in self._workers) and not all(
            w.given_up for w in self._workers
        ):
            self._all_ready.set()

    async def _start(self, worker: _Worker, nursery: trio.Nursery) -> subprocess.Popen[bytes]:
        worker.generation += 1
        worker.served = False
        capture = None
        if self.pcap is not None:
            capture = self.pcap.with_name(f"{self.pcap.name}.q{worker.index}.{worker.generation}")
            worker.captures.append(capture)
        fd = worker.queue.fileno()
        spec = WorkerSpec(
            index=worker.index, count=len(self._workers), tun=worker.queue.name,
            mtu=worker.queue.mtu, fd=fd, offload=worker.queue.offload is not NO_OFFLOAD,
            key=self.key.hex(), control=str(queue_path(self.control, worker.index)),
            pcap=None if capture is None else str(capture),
        )
        stdout = subprocess.PIPE if self.trace_out is not None else None
        # Popen from this thread (not a trio worker thread): the child starts here, in
        # this thread's network namespace.
        process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE,
            pass_fds=(fd,), start_new_session=True,
        )
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(spec.encode())
        process.stdin.flush()  # stdin stays open: its end tells the worker we are gone
        worker.process = process
        nursery.start_soon(self._relay_stderr, worker, process)
        if process.stdout is not None:
            self._trace_pipes.append(_TracePipe(worker.index, process.stdout))
        await trio.lowlevel.checkpoint()
        return process

    async def _relay_stderr(self, worker: _Worker, process: subprocess.Popen[bytes]) -> None:
        """The worker's messages, on our stderr, tagged with its queue; spots "serving"."""
        assert process.stderr is not None
        async for line in _lines(process.stderr):
            text = line.decode(errors="replace").rstrip("\n")
            if ": serving " in text:
                worker.served = True
                self._check_ready()
            prog, sep, rest = text.partition(": ")
            print(f"{prog} queue {worker.index}: {rest}" if sep else text,
                  file=sys.stderr, flush=True)

    async def _emit_trace(self) -> None:
        """Every TRACE_HOLD / 2: read what the workers wrote, then write out, in time order,
        the lines stamped more than TRACE_HOLD ago (none later can precede them); at the
        end, everything."""
        out = self.trace_out
        assert out is not None
        try:
            while not (self._stopping and not self._trace_pipes):
                await trio.sleep(TRACE_HOLD / 2)
                self._drain_trace_pipes()
                out.write("".join(self._merge.ready(_time_of_day(time.time()) - TRACE_HOLD)))
                out.flush()
        finally:
            self._drain_trace_pipes()
            out.write("".join(self._merge.ready(math.inf)))
            out.flush()

    def _drain_trace_pipes(self) -> None:
        for pipe in list(self._trace_pipes):
            if not pipe.drain_into(self._merge):
                self._trace_pipes.remove(pipe)

    async def stop(self) -> None:
        """SIGTERM every worker once, wait for them (then SIGKILL), merge the captures."""
        self._stopping = True
        live = [w.process for w in self._workers if w.process and w.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE):
            for process in live:
                await _wait(process)
        for process in live:
            if process.poll() is None:
                process.kill()
                await _wait(process)
        if self.pcap is not None:
            parts = [(w.index, p) for w in self._workers for p in w.captures if p.exists()]
            merge_captures(parts, self._workers[0].queue.name, len(self._workers), self.pcap)


async def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for a child's exit without a thread (a pidfd is readable once it has exited)."""
    if process.poll() is None:
        pidfd = os.pidfd_open(process.pid)
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
    return process.wait()


class _TracePipe:
    """A worker's stdout, read without blocking, a whole line at a time."""

    def __init__(self, queue: int, pipe: BinaryIO) -> None:
        self.queue, self._pipe, self.fd, self._buf = queue, pipe, pipe.fileno(), b""
        os.set_blocking(self.fd, False)

    def drain_into(self, merge: TraceMerge) -> bool:
        """Hand every complete line to `merge`; False once the worker's end is closed."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                if self._buf:
                    merge.add(self.queue, self._buf.decode(errors="replace"))
                self._pipe.close()
                return False
            *lines, self._buf = (self._buf + data).split(b"\n")
            for line in lines:
                merge.add(self.queue, line.decode(errors="replace") + "\n")


def _time_of_day(t: float) -> float:
    """Seconds since local midnight: the clock of the trace's stamps (tcpdump's HH:MM:SS)."""
    local = time.localtime(t)
    return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + t % 1


async def _lines(pipe: BinaryIO) -> AsyncIterator[bytes]:
    """Lines from a child's pipe, read without blocking the trio thread."""
    fd = pipe.fileno()
    os.set_blocking(fd, False)
    buf = b""
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not data:
            break
        buf += data
        *complete, buf = buf.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if buf:
        yield buf


# ---- one view of the host: the merged trace and capture (no I/O of their own) -------------


class TraceMerge:
    """The workers' trace lines in time order, each tagged with its queue (`q1` after the stamp).

    Each worker's own lines come in stamp order; lines of different workers race through
    their pipes. `add` holds each line; `ready(before)` hands out, in stamp order, every line
    stamped before `before` (seconds since midnight, the stamps' clock). A line without a
    stamp (the `--why` lines under a segment's) stays, untagged, right after the line of its
    own queue before it.
    """

    def __init__(self) -> None:
        self._held: list[tuple[float, int, list[str]]] = []  # (stamp, tiebreak, lines)
        self._tiebreak = itertools.count()
        self._last: dict[int, tuple[float, int, list[str]]] = {}  # each queue's last entry
        self._held_ids: set[int] = set()  # the tiebreaks of the entries in _held

    def add(self, queue: int, line: str) -> None:
        match = _STAMP.match(line.encode())
        last = self._last.get(queue)
        if match is None:
            if last is not None and last[1] in self._held_ids:
                last[2].append(line)  # still held: goes out with it
                return
            entry = (last[0] if last else 0.0, next(self._tiebreak), [line])
        else:
            h, m, s = match.groups()
            cut = match.end()
            entry = (int(h) * 3600 + int(m) * 60 + float(s), next(self._tiebreak),
                     [f"{line[:cut]}q{queue} {line[cut:]}"])
        self._held.append(entry)
        self._held_ids.add(entry[1])
        self._last[queue] = entry

    def ready(self, before: float) -> list[str]:
        due = sorted((held for held in self._held if held[0] < before), key=lambda h: h[:2])
        if due:
            self._held = [held for held in self._held if held[0] >= before]
            self._held_ids.difference_update(held[1] for held in due)
        return [line for _, _, lines in due for line in lines]


def _tagged(queue: int, reader: PcapReader) -> Iterator[tuple[float, int, bytes]]:
    for t, packet in reader:
        yield t, queue, packet


def merge_captures(parts: list[tuple[int, Path]], interface: str, queues: int, out: Path) -> None:
    """The workers' pcap parts (queue, path) as one pcapng at `out`, in time order: one
    interface of `queues` queues, each packet naming its queue; the parts are removed."""
    with ExitStack() as files:
        streams: list[Iterator[tuple[float, int, bytes]]] = []
        for queue, path in parts:
            streams.append(_tagged(queue, PcapReader(files.enter_context(path.open("rb")))))
        with out.open("wb") as f:
            writer = PcapngWriter(f, interface, queues)
            for t, queue, packet in heapq.merge(*streams, key=lambda r: r[0]):
                writer.write(packet, t, queue=queue)
    for _, path in parts:
        path.unlink(missing_ok=True)


async def supervise(
    tun_name: str,
    count: int,
    argv: list[str],
    *,
    host_addr: IPv4Interface,
    mtu: int,
    offload: bool,
    control: Path,
    pcap: Path | None,
    trace_out: TextIO | None,
    say: Callable[[str], None],
) -> int:
    """`serve --queues N`'s supervisor: the device, the workers, until SIGINT/SIGTERM."""
    from .link.tun import TunLink

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with AsyncExitStack() as exits:
            first = TunLink.create(tun_name, host_addr=host_addr, mtu=mtu, offload=offload,
                                   queues=count)
            exits.push_async_callback(first.aclose)  # the last queue closed removes the device
            queues = [first]
            for _ in range(count - 1):
                queues.append(first.open_queue())
                exits.push_async_callback(queues[-1].aclose)
            supervisor = Supervisor(queues, argv, control, pcap, trace_out, say)
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(supervisor.run)
                    say(f"serving on {count} queues of {first.name}, workers "
                        f"{supervisor.pids}, control {control}")
                    async for signum in signals:
                        say(f"{signal.Signals(signum).name}: closing every worker's connections")
                        break
                    with trio.CancelScope(shield=True):
                        await supervisor.stop()
            except WorkersFailed as exc:
                say(str(exc))
                with trio.CancelScope(shield=True):
                    await supervisor.stop()
                return 1
    return 0
