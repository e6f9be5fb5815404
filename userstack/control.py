"""The control socket: how `userstack ss` asks a running `userstack serve` for its table.

The protocol is one line each way on a Unix stream socket: the client sends
`connections\n`, the server answers one line of JSON, `{"connections": [...]}`, each
entry a TcbInfo with enums as their values and endpoints as "ip:port", then closes.
Anything else gets `{"error": "..."}`.

The socket lives at /run/userstack/<tun>.sock when /run is writable (root), else
under $XDG_RUNTIME_DIR/userstack/, else /tmp/userstack-<uid>/.

With `serve --queues N` each worker (one stack per TUN queue) answers on its own socket
beside that path, <tun>.q<i>.sock (`queue_path`), and `fetch_host_table` asks each of
them and merges their tables into the one host's.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import asdict, fields
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import trio

from .tcp.info import TcbInfo, TimerKind
from .tcp.state import State
from .wire.addr import Endpoint

REQUEST = b"connections\n"
MAX_LINE = 4096
_ENDPOINTS = ("local", "remote")


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


def encode(infos: list[TcbInfo]) -> bytes:
    """The reply line for a table."""
    rows = []
    for info in infos:
        row = asdict(info)
        row["state"] = info.state.value
        row["timer"] = info.timer.value if info.timer else None
        for name in _ENDPOINTS:
            row[name] = str(getattr(info, name))
        rows.append(row)
    return json.dumps({"connections": rows}).encode() + b"\n"


def _endpoint(text: str) -> Endpoint:
    ip, _, port = text.rpartition(":")
    return Endpoint(IPv4Address(ip), int(port))


def decode(line: bytes) -> list[TcbInfo]:
    """The table in a reply line; ValueError if it is not one."""
    try:
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise ValueError(f"control socket error: {reply['error']}")
        names = {f.name for f in fields(TcbInfo)}
        out = []
        for row in reply["connections"]:
            values = {k: v for k, v in row.items() if k in names}  # tolerate added fields
            values["state"] = State(row["state"])
            values["timer"] = TimerKind(row["timer"]) if row["timer"] else None
            for name in _ENDPOINTS:
                values[name] = _endpoint(row[name])
            out.append(TcbInfo(**values))
        return out
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed control reply: {exc!r}") from exc


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    buf = bytearray()
    while b"\n" not in buf and len(buf) <= MAX_LINE:
        data = await stream.receive_some(MAX_LINE)
        if not data:
            break
        buf += data
    return bytes(buf)


async def serve_control(
    path: Path,
    table: Callable[[], list[TcbInfo]],
    *,
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
                with trio.move_on_after(5):
                    request = await _read_line(stream)
                    if request.strip() == REQUEST.strip():
                        reply = encode(table())
                    else:
                        reply = json.dumps({"error": f"unknown request {request[:40]!r}"})
                        reply = reply.encode() + b"\n"
                    try:
                        await stream.send_all(reply)
                    except trio.BrokenResourceError:
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


def queue_path(path: Path, queue: int) -> Path:
    """Where the worker of queue `queue` answers, for a host whose control path is `path`."""
    return path.with_name(f"{path.stem}.q{queue}{path.suffix}")


async def queue_paths(path: Path) -> list[Path]:
    """The workers' sockets beside `path` that a live process answers on, by queue."""
    found = path.parent.glob(f"{path.stem}.q*{path.suffix}") if path.parent.is_dir() else []
    live = [p for p in found if p.stem.rpartition(".q")[2].isdigit() and await answers(p)]
    return sorted(live, key=lambda p: int(p.stem.rpartition(".q")[2]))


async def fetch_host_table(path: Path) -> list[TcbInfo]:
    """The table at `path`, or, if nobody answers there, every queue worker's, merged."""
    if await answers(path):
        return await fetch_table(path)
    workers = await queue_paths(path)
    if not workers:
        raise OSError(errno.ECONNREFUSED, f"nobody answers on {path} or beside it")
    infos: list[TcbInfo] = []
    for worker in workers:
        infos += await fetch_table(worker)
    return infos


async def fetch_table(path: Path) -> list[TcbInfo]:
    """Ask the serve process at `path` for its table (OSError if nobody listens)."""
    async with await trio.open_unix_socket(str(path)) as stream:
        await stream.send_all(REQUEST)
        return decode(await _read_line(stream))
