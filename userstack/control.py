"""The control socket: how `userstack ss` asks a running `userstack serve` for its table.

The client sends one line, `connections\n`. The server answers with newline-delimited
JSON and closes:

    {"userstack": 2, "fields": ["state", "local", ...], "process": {...}, "counters": {...}}
    [["ESTABLISHED", ["10.0.0.2", 80], ["10.0.0.1", 43210], 0, ...], ...]   up to 1000 rows
    ...
    {"end": 2}                                                      the number of rows sent

The header names the TcbInfo fields in the order every row lists them (enums as their
values, endpoints as [ip, port]), the serving process (name, pid, uid and the file
descriptors of its TUN, for `ss -p` and `ss -e`) and the stack's counters (for `ss -s`).
The rows are streamed, CHUNK_ROWS to a line, so a table of any size goes through while
the stack keeps running, and the last line says how many were sent: a reply cut short is
an error, never a shorter table. A bad request gets one line, `{"error": "..."}`.

The socket lives at /run/userstack/<tun>.sock when /run is writable (root), else
under $XDG_RUNTIME_DIR/userstack/, else /tmp/userstack-<uid>/.

With `serve --queues N` each worker (one stack per TUN queue) answers on its own socket
beside that path, <tun>.q<i>.sock (`queue_path`), and `fetch_host` asks each of them:
one snapshot per process, so `ss -p` can name each row's own worker.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from enum import Enum
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import trio

from .tcp.info import TcbInfo, TimerKind
from .tcp.state import State
from .wire.addr import Endpoint

REQUEST = b"connections\n"
VERSION = 2
CHUNK_ROWS = 1000  # rows per line and per send: the stack runs between them
MAX_LINE = 1 << 20  # a chunk of rows is ~150 kB, the header ~2 kB: more is not a reply
REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its request line
SEND_TIMEOUT = 30.0  # seconds one chunk of the reply may wait for a client that reads nothing
FIELDS = tuple(f.name for f in fields(TcbInfo))
_ENDPOINTS = ("local", "remote")
_TUN_DEVICE = "/dev/net/tun"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """The process that serves the table: what `ss -p` and `ss -e` print about it."""

    name: str
    pid: int
    uid: int
    fds: tuple[int, ...]  # its TUN file descriptors: where its connections' segments pass

    @classmethod
    def this_process(cls) -> ProcessInfo:
        try:
            name = Path("/proc/self/comm").read_text().strip()
        except OSError:
            name = "userstack"
        return cls(name, os.getpid(), os.getuid(), _tun_fds())


def _tun_fds() -> tuple[int, ...]:
    """The descriptors this process holds open on /dev/net/tun (one per TUN queue)."""
    fds = []
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return ()
    for entry in entries:
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == _TUN_DEVICE:
                fds.append(int(entry))
        except OSError:
            continue  # closed meanwhile (listdir's own fd among them)
    return tuple(sorted(fds))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One reply: the table, the process that serves it and the stack's counters."""

    connections: list[TcbInfo]
    process: ProcessInfo | None = None
    counters: dict[str, int] = field(default_factory=dict)


def default_path(tun: str) -> Path:
    """Where the serve process for TUN device `tun` listens."""
    run = Path("/run")
    if os.access(run, os.W_OK):
        base = run / "userstack"
    elif runtime := os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(runtime) / "userstack"
    else:
        base = Path("/tmp") / f"userstack-{os.getuid()}"
    return base / f"{tun}.sock"


# ---- encoding ---------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    """What json cannot write itself: enums by value, addresses as text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of the control protocol")


def _line(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_jsonable).encode() + b"\n"


def encode(snapshot: Snapshot) -> Iterator[bytes]:
    """The reply, in chunks: the header line, CHUNK_ROWS rows at a time, the end line."""
    process = snapshot.process
    yield _line({
        "userstack": VERSION,
        "fields": FIELDS,
        "process": None if process is None else {
            "name": process.name, "pid": process.pid, "uid": process.uid,
            "fds": list(process.fds),
        },
        "counters": snapshot.counters,
    })
    rows = snapshot.connections
    for start in range(0, len(rows), CHUNK_ROWS):
        yield _line([[getattr(info, name) for name in FIELDS]
                     for info in rows[start:start + CHUNK_ROWS]])
    yield _line({"end": len(rows)})


# ---- decoding ---------------------------------------------------------------------------


class _RowDecoder:
    """Rows as the header names their fields, back into TcbInfo (fields a newer server
    adds are left out); each address is parsed once."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.exact = tuple(names) == FIELDS  # the common case: build TcbInfo positionally
        self.addresses: dict[str, Any] = {}
        self.state, self.timer = names.index("state"), names.index("timer")
        self.local, self.remote = names.index("local"), names.index("remote")

    def endpoint(self, value: list[Any]) -> Endpoint:
        ip, port = value
        address = self.addresses.get(ip)
        if address is None:
            address = self.addresses[ip] = ip_address(ip)
        return Endpoint(address, int(port))

    def info(self, row: list[Any]) -> TcbInfo:
        if len(row) != len(self.names):
            raise ValueError(f"a row has {len(row)} values for {len(self.names)} fields")
        row[self.state] = State(row[self.state])
        timer = row[self.timer]
        row[self.timer] = TimerKind(timer) if timer else None
        row[self.local] = self.endpoint(row[self.local])
        row[self.remote] = self.endpoint(row[self.remote])
        if self.exact:
            return TcbInfo(*row)
        return TcbInfo(**{k: v for k, v in zip(self.names, row, strict=True) if k in FIELDS})


def _process(value: dict[str, Any] | None) -> ProcessInfo | None:
    if value is None:
        return None
    return ProcessInfo(str(value["name"]), int(value["pid"]), int(value["uid"]),
                       tuple(int(fd) for fd in value["fds"]))


def decode_lines(lines: Iterable[bytes]) -> Snapshot:
    """The snapshot in a reply's lines; ValueError if they are not a whole reply."""
    it = iter(lines)
    try:
        header: dict[str, Any] = json.loads(next(it, b"") or b"null") or {}
        if "error" in header:
            raise ValueError(f"control socket error: {header['error']}")
        if header.get("userstack") != VERSION:
            raise ValueError(f"not a userstack control reply (version {VERSION}): {header!r:.80}")
        rows = _RowDecoder(list(header["fields"]))
        infos: list[TcbInfo] = []
        for line in it:
            value = json.loads(line)
            if isinstance(value, dict):
                if value.get("end") != len(infos):
                    raise ValueError(f"reply ends after {len(infos)} rows, announced {value!r}")
                return Snapshot(infos, _process(header["process"]), dict(header["counters"]))
            infos.extend(rows.info(row) for row in value)
        raise ValueError(f"reply cut short after {len(infos)} rows")
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed control reply: {exc!r}") from exc


def decode(data: bytes) -> Snapshot:
    """A whole reply as bytes; see decode_lines."""
    return decode_lines(data.splitlines())


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
    """The lines of `stream` until EOF (a last unterminated line included); none may
    exceed MAX_LINE."""
    buf = bytearray()
    while data := await stream.receive_some(1 << 16):
        buf += data
        if b"\n" not in data:
            if len(buf) > MAX_LINE:
                raise ValueError(f"control reply line longer than {MAX_LINE} bytes")
            continue
        *complete, rest = bytes(buf).split(b"\n")
        for line in complete:
            yield line
        buf = bytearray(rest)
    if buf:
        yield bytes(buf)


# ---- the server and the client ------------------------------------------------------------


async def serve_control(
    path: Path,
    table: Callable[[], list[TcbInfo]],
    *,
    counters: Callable[[], dict[str, int]] = dict,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer table requests on a Unix socket at `path` until cancelled; remove it after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if await answers(path):
        raise OSError(errno.EADDRINUSE, f"another userstack answers on {path}; pass --control")
    path.unlink(missing_ok=True)  # a stale socket from a process that died
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(str(path))
        sock.listen(16)
        listener = trio.SocketListener(sock)

        async def answer(stream: trio.SocketStream) -> None:
            async with stream:
                request = b""
                with trio.move_on_after(REQUEST_TIMEOUT):
                    while b"\n" not in request and len(request) <= len(REQUEST):
                        if not (data := await stream.receive_some(len(REQUEST))):
                            break
                        request += data
                if request.strip() == REQUEST.strip():
                    # One consistent snapshot now; encoding and sending run between packets.
                    snapshot = Snapshot(table(), ProcessInfo.this_process(), counters())
                    chunks: Iterable[bytes] = encode(snapshot)
                else:
                    chunks = [_line({"error": f"unknown request {request[:40]!r}"})]
                try:
                    for chunk in chunks:
                        with trio.fail_after(SEND_TIMEOUT):
                            await stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.TooSlowError):
                    return

        task_status.started()
        await trio.serve_listeners(answer, [listener])
    finally:
        sock.close()
        path.unlink(missing_ok=True)


async def answers(path: Path) -> bool:
    """Whether a live process answers on the Unix socket at `path`."""
    try:
        stream = await trio.open_unix_socket(str(path))
    except OSError:
        return False
    await stream.aclose()
    return True


async def fetch(path: Path) -> Snapshot:
    """Ask the serve process at `path` for its snapshot (OSError if nobody listens,
    ValueError if the reply is not a whole one)."""
    async with await trio.open_unix_socket(str(path)) as stream:
        await stream.send_all(REQUEST)
        return decode_lines([line async for line in _lines(stream)])


async def fetch_table(path: Path) -> list[TcbInfo]:
    """Only the table of `fetch`."""
    return (await fetch(path)).connections


def queue_path(path: Path, queue: int) -> Path:
    """Where the worker of queue `queue` answers, for a host whose control path is `path`."""
    return path.with_name(f"{path.stem}.q{queue}{path.suffix}")


async def queue_paths(path: Path) -> list[Path]:
    """The workers' sockets beside `path` that a live process answers on, by queue."""
    found = path.parent.glob(f"{path.stem}.q*{path.suffix}") if path.parent.is_dir() else []
    live = [p for p in found if p.stem.rpartition(".q")[2].isdigit() and await answers(p)]
    return sorted(live, key=lambda p: int(p.stem.rpartition(".q")[2]))


async def fetch_host(path: Path) -> list[Snapshot]:
    """The snapshot at `path`, or, if nobody answers there, every queue worker's."""
    if await answers(path):
        return [await fetch(path)]
    workers = await queue_paths(path)
    if not workers:
        raise OSError(errno.ECONNREFUSED, f"nobody answers on {path} or beside it")
    return [await fetch(worker) for worker in workers]


async def fetch_host_table(path: Path) -> list[TcbInfo]:
    """The host's table: every worker's rows, merged (see fetch_host)."""
    return [info for snapshot in await fetch_host(path) for info in snapshot.connections]

